"""Every error and warning imgpipe reports, and the one helper that words them.

A problem always says what was received, what was expected, where, and the closest valid
value, so users can fix it without reading the docs. Codes are stable: tests, reports and
the HTTP server key on them, never on wording.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One error or warning. `where` is a token position or a config key path."""

    code: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def size_text(count: float) -> str:
    """Bytes as people read them, in one unit everywhere (reports, limits, errors): decimal
    SI multiples, as file managers and `ls -h --si` show them: 512 B, 12.5 KB, 50.0 MB."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def closest(received: str, candidates: Iterable[str]) -> str | None:
    """The valid value closest to what was received, if any is reasonably close."""
    matches = difflib.get_close_matches(received, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


def describe(
    code: str,
    received: str,
    expected: str,
    where: str = "",
    suggestion: str | None = None,
    *,
    problem: str = "",
    advice: str = "",
) -> Problem:
    """Build the one message format used for every problem: what was received, where, what
    was expected, and the way out: the closest valid value (`suggestion`) or what to do
    (`advice`). A file that cannot be used is named as it is, followed by what is wrong with
    it (`problem`): `photo.jpg: the file ends early; expected a whole JPEG; re-export it`."""
    if problem:
        text = f"{received}: {problem}; expected {expected}"
    else:
        place = f" at {where}" if where else ""
        text = f"{received!r}{place}: expected {expected}"
    if suggestion:
        text += f"; did you mean {suggestion!r}?"
    if advice:
        text += f"; {advice}"
    return Problem(code=code, message=text, where=where)


class ImgpipeError(Exception):
    """Base class: carries one or more problems; str() is one readable line per problem."""

    exit_code = 1

    def __init__(self, problems: Problem | list[Problem]):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @property
    def code(self) -> str:
        return self.problems[0].code


class OptionError(ImgpipeError):
    """The option string is not valid (exit status 2)."""

    exit_code = 2


class ConfigError(ImgpipeError):
    """imgpipe.toml is not valid (exit status 2). Carries the warnings found on the way too,
    so a user fixing errors also sees the misspelt key that may be their cause."""

    exit_code = 2

    def __init__(self, problems: Problem | list[Problem], warnings: tuple[Problem, ...] = ()):
        super().__init__(problems)
        self.warnings = tuple(warnings)


class ImageError(ImgpipeError):
    """The image cannot be processed: unreadable, blocked format, over a limit (exit status 1)."""

    exit_code = 1

    def __init__(self, problems: Problem | list[Problem], stage: str = "load"):
        super().__init__(problems)
        self.stage = stage


class StorageError(ImgpipeError):
    """The build cannot write where it must (disk full, read-only): it stops, exit status 1.
    What it wrote so far is whole (atomic writes, committed state), so nothing is lost."""

    exit_code = 1


def image_error(code: str, message: str, stage: str = "load") -> ImageError:
    return ImageError(Problem(code=code, message=message), stage=stage)


class ClusterError(ImgpipeError):
    """The dask cluster cannot be used or went away mid-build (exit status 1)."""

    exit_code = 1

    @classmethod
    def unreachable(cls, scheduler: str, exc: BaseException) -> ClusterError:
        return cls(
            Problem(
                "scheduler-unreachable",
                f"cannot reach the dask scheduler at "
                f"{scheduler} ({type(exc).__name__}: {exc}); expected a running "
                "`dask scheduler`; check the address and that it is up",
            )
        )

    @classmethod
    def lost(cls, scheduler: str, exc: BaseException) -> ClusterError:
        return cls(
            Problem(
                "scheduler-lost",
                f"lost the dask cluster at {scheduler} mid-build "
                f"({type(exc).__name__}); nothing unfinished was written; "
                "run the build again once the scheduler is back",
            )
        )

    @classmethod
    def no_workers(cls, scheduler: str, seconds: float) -> ClusterError:
        return cls(
            Problem(
                "no-workers",
                f"the dask scheduler at {scheduler} has no worker "
                f"(waited {seconds:.0f} s); expected at least one `dask worker "
                f"{scheduler}`; start one",
            )
        )

    @classmethod
    def missing_extra(cls) -> ClusterError:
        return cls(
            Problem(
                "missing-extra",
                "--scheduler needs dask.distributed: pip install 'imgpipe[cluster]'",
            )
        )


class StoreError(StorageError):
    """The shared store (remote_cache) refused or failed a write (exit status 1)."""

    exit_code = 1

    @classmethod
    def failed(cls, url: str, exc: BaseException) -> StoreError:
        return cls(
            Problem(
                "remote-cache-unavailable",
                f"cannot write to the remote cache "
                f"{url} ({type(exc).__name__}: {exc}); expected a reachable, writable "
                "store; check the URL, credentials (AWS_*) and endpoint",
            )
        )
