"""Drive ``ndstyle serve`` over HTTP, as the page does: upload, follow the progress, download.

Starts the server in this process on a free loopback port, sends the bundled cat photo and
*The Starry Night* with a few options, polls the job, and saves the result file.

Run: python examples/web_client.py [OUTPUT_DIR]   (default: a new temporary folder)
Needs: pip install 'ndstyle[web,vgg16-offline]'
"""

import json
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import uvicorn

from ndstyle.demo import CONTENT, STYLE
from ndstyle.web import create_app

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="ndstyle-web-example-"))
out.mkdir(parents=True, exist_ok=True)

server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)
base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
print("server:", base)

# the form the page builds comes from ndstyle.TransferOptions
fields = json.load(urllib.request.urlopen(f"{base}/api/options"))["fields"]
print("options:", ", ".join(f"{f['name']}={f['default']}" for f in fields if f["main"]))

# multipart/form-data by hand (only the standard library here)
boundary = uuid.uuid4().hex
parts = []
for field, path in (("content", CONTENT), ("style", STYLE)):
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{path.name}"\r\n\r\n'
    parts += [head.encode(), path.read_bytes(), b"\r\n"]
options = json.dumps({"size": 128, "steps": 30})
parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n{options}\r\n'.encode()]
parts += [f"--{boundary}--\r\n".encode()]
request = urllib.request.Request(
    f"{base}/api/jobs",
    data=b"".join(parts),
    headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Ndstyle": "1"},
)
job = json.load(urllib.request.urlopen(request))
while job["state"] == "running":
    time.sleep(1.0)
    job = json.load(urllib.request.urlopen(f"{base}/api/jobs/{job['id']}"))
    p = job["progress"]
    if p:
        print(f"step {p['step']}/{p['total_steps']}  J={p['total']:.4g}  ETA {p['eta']} s")
if job["state"] != "done":
    sys.exit(f"job {job['state']}: {job['error']}")
target = out / job["download_name"]
target.write_bytes(urllib.request.urlopen(f"{base}/api/jobs/{job['id']}/result").read())
print("wrote", target)
server.should_exit = True
