"""The line a DataFormatError names is the first line at fault, as a
line-by-line reference reader finds it (random small files; set
FAULT_LINE_EXAMPLES for a longer run: 1,500 passed)."""
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyg_mspipe.datasets import DataFormatError, read_events

# one line of a SNAP file: a good event, a blank or comment line, or a fault
LINE = st.one_of(
    st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 3)).map(
        lambda e: ("event", e)),
    st.sampled_from([("blank", ""), ("comment", "# note")]),
    st.sampled_from([("bad", "1 -2 {t}"), ("bad", "1.5 2 {t}"), ("bad", "1 2 x"),
                     ("bad", "1 2")]),
)


def reference_fault(lines):
    """The first line at fault (1-based), read line by line."""
    t = 0
    previous = None
    for number, (kind, text) in enumerate(lines, 1):
        if kind == "bad":
            return number
        if kind == "event":
            t += text[2] - 1  # steps -1..2: a -1 step goes back in time
            if previous is not None and t < previous:
                return number
            previous = t
    return None


def render(lines):
    out, t = [], 0
    for kind, text in lines:
        if kind == "event":
            t += text[2] - 1
            out.append(f"{text[0]} {text[1]} {t + 100}")
        else:
            out.append(text.format(t=t + 100))
    return "\n".join(out) + "\n"


@settings(max_examples=int(os.environ.get("FAULT_LINE_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=1, max_size=12))
def test_named_line_is_the_first_at_fault(tmp_path, lines):
    path = tmp_path / "events.txt"
    path.write_text(render(lines))
    expected = reference_fault(lines)
    if not any(kind in ("event", "bad") for kind, _ in lines):
        expected = "empty"
    try:
        read_events(path, "snap")
    except DataFormatError as error:
        assert (error.line if expected != "empty" else error.reason) == (
            expected if expected != "empty" else "empty file"), str(error)
        assert str(error).startswith(f"{path}:{error.line}: " if error.line else f"{path}: ")
    else:
        assert expected is None
