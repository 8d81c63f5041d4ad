# Type information of the compiled core (tlslog/_linescan.c); see tlslog.engine.prefilter.
from collections.abc import Callable

def keep(
    data: bytes,
    previous: bytes | None,
    classify: Callable[[str], int],
    decide: Callable[[str], int],
    max_line: int,
    /,
) -> tuple[list[str], list[int], int, int, int, int] | None: ...
