"""The package's exception, apart so that every module can raise it without importing the package itself."""


class HioError(Exception):
    """A tuple got no acknowledgement, or a call failed. `code` is an HIO_ERR_* value of hio_connector.h."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
