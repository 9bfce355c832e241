# Load the Celery app whenever Django loads, so shared tasks enqueued from web processes use its
# configuration (broker, routes) instead of Celery's defaults.
from celery_app import app as celery_app

__all__ = ["celery_app"]
