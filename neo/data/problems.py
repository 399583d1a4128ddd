"""Problems found in a dataset: collected, counted and reported in one place."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class DatasetError(ValueError):
    """A dataset cannot be used as it is; the message names the file and the problem."""


@dataclass(frozen=True)
class Problem:
    """One problem in one file.

    Attributes:
        kind: short category, e.g. ``"missing image"``, used for counting.
        file: the file the problem is in (annotation file or image).
        detail: what is wrong, in words.
        fatal: whether the dataset cannot be used until it is fixed.
    """

    kind: str
    file: str
    detail: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.file}: {self.detail}"


@dataclass
class ProblemReport:
    """The problems of one dataset split, with counts by kind."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, file: str, detail: str, fatal: bool = False) -> None:
        """Records one problem."""
        self.problems.append(Problem(kind, str(file), detail, fatal))

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the dataset unusable."""
        return [p for p in self.problems if p.fatal]

    @property
    def warnings(self) -> list[Problem]:
        """Problems neo works around (clipping, skipping), counted."""
        return [p for p in self.problems if not p.fatal]

    def counts(self) -> Counter[str]:
        """Number of problems of each kind."""
        return Counter(p.kind for p in self.problems)

    def summary(self) -> str:
        """One line: counts by kind, errors first."""
        if not self.problems:
            return "no problems"
        fatal_kinds = {p.kind for p in self.errors}
        parts = [
            f"{count} {kind}{' (error)' if kind in fatal_kinds else ''}"
            for kind, count in sorted(
                self.counts().items(), key=lambda kv: kv[0] not in fatal_kinds
            )
        ]
        return ", ".join(parts)

    def raise_if_fatal(self, max_listed: int = 5) -> None:
        """Raises :class:`DatasetError` naming the first fatal problems, if there are any."""
        errors = self.errors
        if not errors:
            return
        listed = "; ".join(str(p) for p in errors[:max_listed])
        more = (
            f" (and {len(errors) - max_listed} more; run `neo data check`)"
            if len(errors) > max_listed
            else ""
        )
        raise DatasetError(listed + more)
