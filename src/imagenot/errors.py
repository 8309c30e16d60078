"""One exception type for user-facing failures, so the CLI can print them without a traceback."""


class ImagenotError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class InputError(ImagenotError):
    """Bad input data: the message names the file and, where it applies, the line."""

    def __init__(self, message: str, path: object | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
