"""The one exception type whose message is meant for the user."""


class CaptionerError(Exception):
    """A problem with the user's input: the CLI prints its message as one line, without a traceback."""
