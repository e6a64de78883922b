"""The asv dashboard in a real browser: results of a quick asv run are published, served on
127.0.0.1 and opened in headless Chromium, whose rendered DOM must list every benchmark with its
figures. Skips with the reason when asv, Chromium or Debian's copies of the page's libraries are
missing (.ci/run installs them)."""
import html
import re
import struct

import pytest
import support_asv
import support_dashboard

pytestmark = [
    pytest.mark.skipif(not support_asv.asv_installed(), reason="asv is not installed (pip install asv)"),
    pytest.mark.skipif(support_dashboard.chromium() is None,
                       reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(bool(support_dashboard.missing_libraries()),
                       reason="the dashboard's libraries are not installed (apt-get install libjs-jquery "
                              "libjs-jquery-flot libjs-jquery-stupidtable node-blueimp-md5 libjs-bootstrap)"),
    pytest.mark.timeout(support_asv.RUN_TIMEOUT + 3 * support_dashboard.CHROMIUM_TIMEOUT),
]

ROW = re.compile(r'<tr><td><a href="#(?P<name>[^"?]+)\?[^"]*"[^>]*>[^<]*</a>'
                 r'(?:<a [^>]*>(?P<params>[^<]*)</a>)?</td>'
                 r'<td class="value"[^>]*>(?:<span[^>]*>(?P<value>[^<]*)</span>)?')


@pytest.fixture(scope="module")
def dashboard():
    asv_run = support_asv.quick_run()
    assert asv_run.run.returncode == 0, asv_run.run.stdout[-4000:]
    html_dir = support_dashboard.publish(asv_run)
    with support_dashboard.serving(html_dir) as url:
        yield asv_run, url


def test_benchmark_list_renders_every_benchmark_with_figures(dashboard):
    asv_run, url = dashboard
    dom = support_dashboard.rendered_dom(url + "#/summarylist")
    assert "failed to load" not in dom, "the page's scripts did not load"
    rows = [(match["name"], html.unescape(match["params"] or ""), match["value"])
            for match in ROW.finditer(dom)]
    listed = {name for name, _params, _value in rows}
    missing = set(asv_run.results()) - listed
    assert not missing, f"benchmarks missing from the rendered list: {sorted(missing)}"
    figures = {(name, params): value for name, params, value in rows}
    anchor = figures[("pep371.Fibonacci.time_workers", " ('multiprocessing', 2)")]
    assert re.fullmatch(r"[0-9.]+(ns|μs|ms|s)", anchor), anchor


def test_screenshot_of_the_list_is_a_picture_of_the_window(dashboard, tmp_path):
    _asv_run, url = dashboard
    path = support_dashboard.screenshot(url + "#/summarylist", tmp_path / "dashboard.png", size=(1280, 900))
    with open(path, "rb") as picture:
        header = picture.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert header[12:16] == b"IHDR"
    assert struct.unpack(">II", header[16:24]) == (1280, 900)
