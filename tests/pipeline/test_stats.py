"""Pipeline statistics: summary and timeline plot."""
import pytest

from pyg_mspipe.pipeline import PipelineStats
from pyg_mspipe.pipeline.stats import STAGES

from .common import make_data, train

pytestmark = pytest.mark.timeout(120)


def test_summary_of_hand_made_records():
    stats = PipelineStats(2)
    t0 = stats.origin
    for i, s in enumerate([0, 1, 2, 1]):
        rec = stats.record(i)
        rec.staleness, rec.bound, rec.stall = s, 2, 0.01
        stats.span(i, "fetch", t0 + i, t0 + i + 0.1)
        stats.span(i, "write", t0 + i + 0.5, t0 + i + 0.6)
    summary = stats.summary()
    assert summary["max_staleness"] == 2
    assert summary["mean_staleness"] == 1.0
    assert summary["histogram"] == {0: 1, 1: 2, 2: 1}
    assert summary["stall_seconds"] == pytest.approx(0.04)
    assert summary["hidden_share"] == pytest.approx(1 - 0.04 / 0.8)
    assert "max_staleness=2" in repr(stats)


def test_timeline_png(tmp_path):
    pytest.importorskip("matplotlib")
    data = make_data()
    stats = train(data, staleness_bound=2)[3]
    path = tmp_path / "timeline.png"
    fig = stats.plot_timeline(str(path), first=0, count=10)
    assert path.stat().st_size > 1000
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(STAGES)
