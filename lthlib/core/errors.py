"""The one exception type for a user's mistakes (every module raises it; the stages print it)."""


class UserError(ValueError):
    """A mistake in the params or the inputs that the user can fix: the stages print it as one line and exit with
    status 2. Every other exception is a bug and keeps its traceback."""
