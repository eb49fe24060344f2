"""The graders' one error: what is wrong with a grader (or its run) and which field (`param`)."""

from __future__ import annotations

from tuneforge.errors import UserError


class GraderError(UserError):
    """A bad or unsupported grader, e.g. `GraderError("...", "grader.graders.b.operation")`: a 400."""

    def __init__(self, message: str, param: str | None = "grader", *, code: str | None = None):
        super().__init__(message, status=400, param=param, code=code)
