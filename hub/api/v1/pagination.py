from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """Page-number pagination whose ``page_size`` is checked, not silently ignored.

    DRF falls back to the default page size for ``page_size=abc`` or ``-5``; a client then pages
    through results it did not ask for. Here that is a 400 problem naming the parameter. Values above
    ``max_page_size`` are still capped, as the schema describes.
    """

    page_size_query_param = "page_size"
    max_page_size = 1000  # records per page

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError(
                {self.page_size_query_param: [f"expected a whole number from 1, got {raw!r}"]}
            )
        return min(size, self.max_page_size)
