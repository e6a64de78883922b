"""Serve asv's published dashboard on loopback and look at it with headless Chromium.

`asv publish` writes a page that loads jQuery, flot, bootstrap, md5 and stupidtable from CDNs. This
machine has no internet, so the page served here loads Debian's packaged copies instead (apt-get
install libjs-jquery libjs-jquery-flot libjs-jquery-stupidtable node-blueimp-md5 libjs-bootstrap);
asv's own scripts and the results are untouched.

    python tests/support_dashboard.py docs/dashboard.png     # regenerate the docs' screenshot
"""
import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

JAVASCRIPT = "/usr/share/javascript"
# CDN file name (as in asv's index.html) -> Debian's copy
LIBRARIES = {
    "jquery-3.3.1.min.js": "jquery/jquery.min.js",
    "jquery.flot.min.js": "jquery-flot/jquery.flot.min.js",
    "jquery.flot.time.min.js": "jquery-flot/jquery.flot.time.min.js",
    "jquery.flot.selection.min.js": "jquery-flot/jquery.flot.selection.min.js",
    "jquery.flot.categories.min.js": "jquery-flot/jquery.flot.categories.min.js",
    "stupidtable.min.js": "jquery-stupidtable/stupidtable.min.js",
    "md5.min.js": "blueimp-md5/md5.min.js",
    "bootstrap.min.js": "bootstrap/js/bootstrap.min.js",
    "bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
}
# Only orders bars side by side in some graphs; Debian does not package it.
OPTIONAL = {"jquery.flot.orderBars.js"}
CHROMIUM_TIMEOUT = 90


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_libraries():
    return [path for path in LIBRARIES.values() if not os.path.exists(os.path.join(JAVASCRIPT, path))]


def use_local_libraries(html_dir):
    """Rewrite index.html's CDN tags to copies in html_dir/offline/ (and drop their integrity
    hashes, which name the CDN's exact bytes)."""
    offline = os.path.join(html_dir, "offline")
    os.makedirs(offline, exist_ok=True)
    for name, path in LIBRARIES.items():
        shutil.copy(os.path.join(JAVASCRIPT, path), os.path.join(offline, name))
    index = os.path.join(html_dir, "index.html")
    with open(index) as source:
        page = source.read()

    def local(match):
        tag = match.group(0)
        name = match.group("url").rsplit("/", 1)[-1]
        if name in OPTIONAL:
            return ""
        if name not in LIBRARIES:
            raise AssertionError(f"asv's page loads {match.group('url')}, which has no local copy here")
        tag = tag.replace(match.group("url"), f"offline/{name}")
        return re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)

    page = re.sub(r'<(script|link)[^>]*?(src|href)="(?P<url>https?://[^"]+)"[^>]*>(</script>)?',
                  local, page)
    with open(index, "w") as out:
        out.write(page)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serving(directory):
    """Serve `directory` on 127.0.0.1 from a thread; yield the base URL."""
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def run_chromium(*arguments):
    """Headless Chromium with a throwaway profile; --virtual-time-budget lets the page's scripts
    fetch and render before the DOM is dumped or the screenshot taken."""
    with tempfile.TemporaryDirectory(prefix="shmproc-chromium-") as profile:
        command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                   "--virtual-time-budget=15000", *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT,
                              stdin=subprocess.DEVNULL)


def rendered_dom(url):
    return run_chromium("--dump-dom", url).stdout


def screenshot(url, path, size=(1280, 900)):
    run_chromium(f"--window-size={size[0]},{size[1]}", f"--screenshot={os.path.abspath(path)}", url)
    return path


def publish(asv_run):
    """asv publish the run's results; return the published folder, made loadable offline."""
    import support_asv
    published = support_asv.asv(["publish"], asv_run.folder)
    assert published.returncode == 0, published.stdout + published.stderr
    use_local_libraries(asv_run.html_dir)
    return asv_run.html_dir


if __name__ == "__main__":
    import support_asv
    target = sys.argv[1] if len(sys.argv) > 1 else "dashboard.png"
    with serving(publish(support_asv.quick_run())) as url:
        print(screenshot(url + "#/summarylist", target, size=(1280, 1400)))
