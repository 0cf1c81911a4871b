"""The project's exception hierarchy: one base class, one subclass per kind of failure."""


class ZSSRError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(ZSSRError, ValueError):
    """A configuration key is unknown, of the wrong type or out of range."""

    def __init__(self, key: str, message: str):
        super().__init__(f"config key {key!r}: {message}")
        self.key = key
        self.message = message


class BadImageError(ZSSRError, ValueError):
    """An input image cannot be used (unreadable, wrong type, too small or too large)."""


class Cancelled(ZSSRError):
    """A job was cancelled while it ran."""


class UnknownJobError(ZSSRError, KeyError):
    """No job with the given id exists (or its result has expired)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown job"


class QueueFullError(ZSSRError):
    """The job queue is at its configured bound; the client should retry later."""


class BackendUnavailableError(ZSSRError):
    """The job backend (e.g. Redis) cannot be reached."""


class ImageTooLargeError(BadImageError):
    """An upload has more bytes or more pixels than the service accepts."""


class NotJPEGError(BadImageError):
    """An upload is not a JPEG by its content, whatever its name or declared type."""


class ImageTooSmallError(BadImageError):
    """An upload (or the region asked for) is too small to enlarge meaningfully."""


class InvalidRequestError(ZSSRError, ValueError):
    """A request field is missing or malformed (a seed that is not a number, a region outside the photo)."""


class JobStateError(ZSSRError):
    """The job exists but cannot do what was asked in its present state (no result yet, already finished)."""


class JobFailedError(ZSSRError):
    """A job failed on the server for a reason that is not the client's (its message says so in plain words)."""


class TooManyJobsError(ZSSRError):
    """This client already has its configured number of jobs queued or running; it should retry later."""

    @classmethod
    def at(cls, cap: int) -> "TooManyJobsError":
        return cls(f"you already have {cap} job{'s' if cap > 1 else ''} queued or running; try again when one "
                   "has finished")


class RateLimitedError(ZSSRError):
    """This client has submitted more jobs than its configured rate allows; it should retry later."""


class UnauthorizedError(ZSSRError):
    """The API needs a key (`Authorization: Bearer KEY`) and none was given."""


class ForbiddenError(ZSSRError):
    """The API key given is not one of the configured keys."""
