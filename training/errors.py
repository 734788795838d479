"""The one exception type a command-line user should see as a plain message."""


class UserError(Exception):
    """Bad input from the user: reported as a one-line error with exit code 2, no traceback."""
