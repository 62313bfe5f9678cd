#!/usr/bin/env python3
"""A virtual kubelet provider in Python, standard library only.

It speaks the remote provider protocol, versions 1 and 2 (docs/remote-provider.md): run it, then
start the virtual kubelet with `--provider remote` and a provider config
`{endpoint: http://127.0.0.1:PORT}`. Each request is answered in the version its
VK-Provider-Protocol header asks for (none: 1). Version 2 adds the delete reason (`deleted`, or
`finished` for a pod that reached Succeeded/Failed) and errors with VkError codes.

    python3 examples/python-provider/provider.py --port 9600 --state-file /tmp/py-pods.json

Pods "run" nowhere: like the TypeScript mock provider, each pod is a record whose state is a
function of the clock, acted out from its annotations:

    mock.vk.io/create-delay-ms    createPod takes this long (the pod is visible, Pending, meanwhile)
    mock.vk.io/running-delay-ms   from creation until the containers run (ContainerCreating)
    mock.vk.io/complete-after-ms  the containers exit this long after starting ...
    mock.vk.io/exit-code          ... with this code; restartPolicy decides between done and restart
    mock.vk.io/fail-create        createPod fails with this message
    mock.vk.io/fail-delete        deletePod fails with this message
    mock.vk.io/log-lines          what each container prints when it starts

Declared capabilities: notifyPods (GET /v1/pods/watch, newline-delimited JSON), nodeConfig, ping,
getContainerLogs (chunked text, with follow) and getStats; plus the resolvedPod extension. exec,
attach and port-forward (WebSocket) are not implemented, so they are not declared: the virtual
kubelet answers those requests with "not supported" and the conformance suite skips them.

With --state-file the pods survive a restart (kill -9 included): the file is rewritten on every
change and read at start-up; since state is a function of the recorded times, pods that finished
while the process was down come back finished.
"""

import argparse
import hmac
import json
import os
import queue
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

PROTOCOL_VERSIONS = ("1", "2")
VERSION_HEADER = "vk-provider-protocol"
DELETE_REASONS = ("deleted", "finished")
MAX_REQUEST_BYTES = 16 << 20
HEARTBEAT_SECONDS = 5.0

ERROR_STATUS = {
    "BadRequest": 400,
    "UnsupportedVersion": 400,
    "Unauthorized": 401,
    "NotFound": 404,
    "UnknownPath": 404,
    "MethodNotAllowed": 405,
    "PayloadTooLarge": 413,
    "UnsupportedMediaType": 415,
    "ProviderError": 500,
    "Unsupported": 501,
}

# Version 2 names the same conditions with the virtual kubelet's error codes (src/errors.ts);
# the HTTP status stays the one above.
V2_CODES = {
    "BadRequest": "VK_INVALID_REQUEST",
    "UnsupportedVersion": "VK_PROTOCOL",
    "Unauthorized": "VK_INVALID_REQUEST",
    "NotFound": "VK_NOT_FOUND",
    "UnknownPath": "VK_UNSUPPORTED",
    "MethodNotAllowed": "VK_INVALID_REQUEST",
    "PayloadTooLarge": "VK_INVALID_REQUEST",
    "UnsupportedMediaType": "VK_INVALID_REQUEST",
    "ProviderError": "VK_PROVIDER",
    "Unsupported": "VK_UNSUPPORTED",
}


class ProtocolError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_ms():
    return int(time.time() * 1000)


def int_annotation(annotations, key, maximum=2**31 - 1):
    raw = annotations.get(key)
    if raw is None:
        return None
    raw = str(raw).strip()
    if not re.fullmatch(r"\d+", raw) or int(raw) > maximum:
        raise ProtocolError("ProviderError", f"annotation {key}: expected an integer between 0 and {maximum}, got {raw!r}")
    return int(raw)


class PodRecord:
    """One pod; its status is computed from these fields and the clock."""

    def __init__(self, wire, created_at, ip):
        self.wire = wire  # {"pod": ..., "volumes": [...]}, exactly as received
        self.created_at = created_at
        self.ip = ip
        self.configure()

    @property
    def pod(self):
        return self.wire["pod"]

    @property
    def uid(self):
        return self.pod["metadata"]["uid"]

    def configure(self):
        annotations = self.pod["metadata"].get("annotations") or {}
        self.running_delay = int_annotation(annotations, "mock.vk.io/running-delay-ms") or 0
        complete = annotations.get("mock.vk.io/complete-after-ms")
        self.complete_after = None if complete is None or str(complete).strip() == "never" else int_annotation(annotations, "mock.vk.io/complete-after-ms")
        self.exit_code = int_annotation(annotations, "mock.vk.io/exit-code", 255) or 0
        self.restart_policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"

    def to_json(self):
        return {"wire": self.wire, "createdAt": self.created_at, "ip": self.ip}

    @staticmethod
    def from_json(data):
        return PodRecord(data["wire"], data["createdAt"], data["ip"])

    def state(self, now):
        """(stage, run_started, restarts, last_exit_at, finished_at) at time `now`."""
        start = self.created_at + self.running_delay
        if now < start:
            return ("creating", None, 0, None, None)
        if self.complete_after is None:
            return ("running", start, 0, None, None)
        length = max(self.complete_after, 1)
        done = self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and self.exit_code == 0)
        if done:
            if now < start + length:
                return ("running", start, 0, None, None)
            return ("terminated", start, 0, None, start + length)
        restarts = (now - start) // length
        run_started = start + restarts * length
        return ("running", run_started, restarts, run_started if restarts > 0 else None, None)

    def status(self, now, host_ip):
        stage, run_started, restarts, last_exit_at, finished_at = self.state(now)
        containers = (self.pod.get("spec") or {}).get("containers") or []
        statuses = []
        for c in containers:
            cid = f"python://{self.uid}-{c['name']}"
            base = {"name": c["name"], "image": c.get("image", ""), "imageID": "", "restartCount": restarts, "lastState": {}}
            if last_exit_at is not None:
                base["lastState"] = {"terminated": {"exitCode": self.exit_code, "reason": "Completed" if self.exit_code == 0 else "Error", "finishedAt": rfc3339(last_exit_at), "containerID": cid}}
            if stage == "creating":
                statuses.append({**base, "ready": False, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}})
            elif stage == "running":
                statuses.append({**base, "containerID": cid, "ready": True, "started": True, "state": {"running": {"startedAt": rfc3339(run_started)}}})
            else:
                terminated = {"exitCode": self.exit_code, "reason": "Completed" if self.exit_code == 0 else "Error", "startedAt": rfc3339(run_started), "finishedAt": rfc3339(finished_at), "containerID": cid}
                statuses.append({**base, "containerID": cid, "ready": False, "started": False, "state": {"terminated": terminated}})
        phase = {"creating": "Pending", "running": "Running"}.get(stage) or ("Succeeded" if self.exit_code == 0 else "Failed")
        status = {"phase": phase, "hostIP": host_ip, "startTime": rfc3339(self.created_at), "containerStatuses": statuses}
        if stage != "creating":
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        return status

    def signature(self, now):
        stage, _, restarts, _, _ = self.state(now)
        return (stage, restarts)


class Backend:
    def __init__(self, name, host_ip, state_file):
        self.name = name
        self.host_ip = host_ip
        self.state_file = state_file
        self.lock = threading.RLock()
        self.pods = {}  # "ns/name" -> PodRecord
        self.next_ip = 2
        self.watchers = set()
        self.signatures = {}
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding="utf-8") as f:
                saved = json.load(f)
            for key, data in saved.get("pods", {}).items():
                self.pods[key] = PodRecord.from_json(data)
            self.next_ip = saved.get("nextIp", 2)

    # --- Persistence: the whole state, written atomically on every change.

    def save(self):
        if not self.state_file:
            return
        with self.lock:
            data = {"pods": {key: rec.to_json() for key, rec in self.pods.items()}, "nextIp": self.next_ip}
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)

    # --- Pods.

    def render(self, rec, now=None):
        pod = dict(rec.pod)
        pod["status"] = rec.status(now or now_ms(), self.host_ip)
        return pod

    def create(self, wire):
        pod = wire["pod"]
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        annotations = meta.get("annotations") or {}
        delay = int_annotation(annotations, "mock.vk.io/create-delay-ms") or 0
        if "mock.vk.io/fail-create" in annotations:
            time.sleep(delay / 1000)
            raise ProtocolError("ProviderError", annotations["mock.vk.io/fail-create"] or "mock.vk.io/fail-create: injected failure")
        with self.lock:
            existing = self.pods.get(key)
            if existing is not None and existing.uid == meta["uid"]:
                return  # createPod is idempotent per UID
            ip = f"10.245.{(self.next_ip >> 8) & 255}.{self.next_ip & 255}"
            self.next_ip += 1
            rec = PodRecord(wire, now_ms(), ip)
            self.pods[key] = rec
        self.save()
        self.changed(key)
        time.sleep(delay / 1000)

    def update(self, wire):
        meta = wire["pod"]["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        with self.lock:
            rec = self.find(key, meta.get("uid"))
            rec.wire = wire
            rec.configure()
        self.save()
        self.changed(key)

    def delete(self, pod, reason="deleted"):
        # Pods run nowhere, so there is nothing to stop: `deleted` and `finished` both forget the record.
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        with self.lock:
            rec = self.find(key, meta.get("uid"))
            annotations = meta.get("annotations") or (rec.pod["metadata"].get("annotations") or {})
            if "mock.vk.io/fail-delete" in annotations:
                raise ProtocolError("ProviderError", annotations["mock.vk.io/fail-delete"] or "mock.vk.io/fail-delete: injected failure")
            del self.pods[key]
            self.signatures.pop(key, None)
        self.save()

    def find(self, key, uid):
        rec = self.pods.get(key)
        if rec is None:
            raise ProtocolError("NotFound", f"pod {key} not found")
        if uid and uid != rec.uid:
            raise ProtocolError("NotFound", f"pod {key} with uid {uid} not found (running uid {rec.uid})")
        return rec

    def get(self, namespace, name):
        with self.lock:
            rec = self.pods.get(f"{namespace}/{name}")
            return None if rec is None else self.render(rec)

    def list(self):
        now = now_ms()
        with self.lock:
            return [self.render(rec, now) for rec in self.pods.values()]

    # --- Push: a watcher is a queue of lines; a ticker notices transitions due to the clock.

    def changed(self, key):
        with self.lock:
            rec = self.pods.get(key)
            if rec is None:
                return
            now = now_ms()
            self.signatures[key] = rec.signature(now)
            line = json.dumps({"type": "POD", "pod": self.render(rec, now)}) + "\n"
            for q in list(self.watchers):
                q.put(line)

    def tick(self):
        with self.lock:
            now = now_ms()
            due = [key for key, rec in self.pods.items() if self.signatures.get(key) != rec.signature(now)]
        for key in due:
            self.changed(key)


def node_config():
    return {
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "labels": {"example.vk.io/language": "python"},
        "operatingSystem": "linux",
        "architecture": "amd64",
        "nodeInfo": {"containerRuntimeVersion": "python-example://0.1.0"},
    }


def validate_wire_pod(body, require_uid=True):
    if not isinstance(body, dict):
        raise ProtocolError("BadRequest", "invalid request body: expected an object")
    pod = body.get("pod")
    if not isinstance(pod, dict) or not isinstance(pod.get("metadata"), dict):
        raise ProtocolError("BadRequest", "invalid request body: pod.metadata: required")
    meta = pod["metadata"]
    for field in ("namespace", "name") + (("uid",) if require_uid else ()):
        if not isinstance(meta.get(field), str) or not meta[field]:
            raise ProtocolError("BadRequest", f"invalid request body: pod.metadata.{field}: required (string)")
    spec = pod.get("spec", {})
    if not isinstance(spec, dict):
        raise ProtocolError("BadRequest", "invalid request body: pod.spec: expected an object")
    containers = spec.get("containers", [])
    if not isinstance(containers, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"] for c in containers):
        raise ProtocolError("BadRequest", "invalid request body: pod.spec.containers: expected an array of objects with a name")
    annotations = meta.get("annotations", {})
    if not isinstance(annotations, dict):
        raise ProtocolError("BadRequest", "invalid request body: pod.metadata.annotations: expected an object")
    volumes = body.get("volumes", [])
    if not isinstance(volumes, list):
        raise ProtocolError("BadRequest", "invalid request body: volumes: expected an array")
    return {"pod": pod, "volumes": volumes}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "python-example-provider/0.1"
    backend = None  # set by main()
    token = None
    verbose = False
    max_request_bytes = MAX_REQUEST_BYTES
    version = "1"  # of the request being answered

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # --- Responses.

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(VERSION_HEADER, self.version)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, code, message):
        wire = code if self.version == "1" else V2_CODES.get(code, "VK_PROVIDER")
        self.send_json(ERROR_STATUS.get(code, 500), {"error": {"code": wire, "message": message}})

    def start_chunked(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.send_header(VERSION_HEADER, self.version)
        self.end_headers()

    def write_chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- Requests.

    def read_json(self):
        ctype = self.headers.get("Content-Type")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise ProtocolError("BadRequest", "a request body needs a Content-Length")
        length = int(length)
        limit = self.max_request_bytes
        if length > limit:
            # Drain what was sent (up to a bound) so the client reads the 413 instead of a reset.
            left = length
            while left > 0 and length <= 4 * limit + (1 << 20):
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
            if left > 0:
                self.close_connection = True
            raise ProtocolError("PayloadTooLarge", f"request body of {length} bytes exceeds the limit of {limit} bytes")
        raw = self.rfile.read(length)
        if ctype is not None and not ctype.lower().startswith("application/json"):
            raise ProtocolError("UnsupportedMediaType", f"request body must be application/json, not {ctype}")
        if not raw.strip():
            raise ProtocolError("BadRequest", "request body is empty; expected JSON")
        try:
            return json.loads(raw)
        except ValueError as err:
            raise ProtocolError("BadRequest", f"malformed JSON in request body: {err}")

    def route(self, method):
        header = self.headers.get(VERSION_HEADER)
        asked = "1" if header is None else header.strip()
        # Errors before the version is known to be good are answered in version 1, which every client reads.
        self.version = asked if asked in PROTOCOL_VERSIONS else "1"
        if self.token is not None:
            auth = self.headers.get("Authorization", "")
            given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise ProtocolError("Unauthorized", "missing or invalid bearer token")
        url = urlsplit(self.path)
        m = re.fullmatch(r"/v(\d+)(/.*)?", url.path)
        if not m:
            raise ProtocolError("UnknownPath", f"no such endpoint {url.path}: paths start with /v1/")
        if m.group(1) != "1":
            # Every protocol version keeps the /v1 paths: the header picks the version.
            raise ProtocolError("UnsupportedVersion", f"protocol version v{m.group(1)} is not supported by this server; it speaks v1 paths (protocol versions 1 and 2, chosen with the {VERSION_HEADER} header)")
        if asked not in PROTOCOL_VERSIONS:
            raise ProtocolError("UnsupportedVersion", f"{VERSION_HEADER} header {header!r} is not supported by this server; it speaks 1 and 2")
        rest = m.group(2) or "/"
        query = parse_qs(url.query)
        parts = [unquote(p) for p in rest.strip("/").split("/")]
        b = self.backend

        def allow(*methods):
            if method not in methods:
                raise ProtocolError("MethodNotAllowed", f"{method} is not allowed on {url.path} (allowed: {', '.join(methods)})")

        if rest == "/capabilities":
            allow("GET")
            return self.send_json(200, {
                "protocol": f"v{self.version}",
                "versions": [int(v) for v in PROTOCOL_VERSIONS],
                "name": b.name,
                "capabilities": ["notifyPods", "nodeConfig", "ping", "getContainerLogs", "getStats"],
                "extensions": ["resolvedPod"],
                "maxRequestBytes": self.max_request_bytes,
                "heartbeatIntervalMs": int(HEARTBEAT_SECONDS * 1000),
                "server": self.server_version,
            })
        if rest == "/ping":
            allow("GET")
            return self.send_json(200, {"ok": True})
        if rest == "/node":
            allow("GET")
            return self.send_json(200, node_config())
        if rest == "/stats":
            allow("GET")
            return self.send_json(200, {"pods": self.stats()})
        if rest == "/pods":
            allow("GET", "POST")
            if method == "GET":
                return self.send_json(200, {"items": b.list()})
            b.create(validate_wire_pod(self.read_json()))
            return self.send_json(201, {})
        if rest == "/pods/watch":
            allow("GET")
            return self.watch()
        if len(parts) >= 3 and parts[0] == "pods":
            namespace, name = parts[1], parts[2]
            tail = parts[3:]
            if not tail:
                allow("GET", "PUT", "DELETE")
                if method == "GET":
                    pod = b.get(namespace, name)
                    if pod is None:
                        raise ProtocolError("NotFound", f"pod {namespace}/{name} not found")
                    return self.send_json(200, pod)
                body = self.read_json()
                wire = validate_wire_pod(body, require_uid=(method == "PUT"))
                meta = wire["pod"]["metadata"]
                if (meta["namespace"], meta["name"]) != (namespace, name):
                    raise ProtocolError("BadRequest", f"invalid request body: pod {meta['namespace']}/{meta['name']} does not match the path's pod {namespace}/{name}")
                if method == "PUT":
                    b.update(wire)
                else:
                    reason = "deleted"  # version 1 has no reason
                    if self.version != "1":
                        reason = body.get("reason")
                        if reason not in DELETE_REASONS:
                            raise ProtocolError("BadRequest", 'invalid request body: reason: expected one of "deleted", "finished"')
                    b.delete(wire["pod"], reason)
                return self.send_json(200, {})
            if tail == ["status"]:
                allow("GET")
                pod = b.get(namespace, name)
                if pod is None:
                    raise ProtocolError("NotFound", f"pod {namespace}/{name} not found")
                return self.send_json(200, pod["status"])
            if tail == ["resolved"]:
                allow("GET")
                with b.lock:
                    rec = b.pods.get(f"{namespace}/{name}")
                    if rec is None:
                        raise ProtocolError("NotFound", f"pod {namespace}/{name} not found")
                    return self.send_json(200, rec.wire)
            if len(tail) == 3 and tail[0] == "containers" and tail[2] == "logs":
                allow("GET")
                return self.logs(namespace, name, tail[1], query)
            if len(tail) == 3 and tail[0] == "containers" and tail[2] in ("exec", "attach") or tail == ["portforward"]:
                raise ProtocolError("Unsupported", "this provider does not implement exec, attach or port-forward")
        raise ProtocolError("UnknownPath", f"no such endpoint {url.path}")

    def handle_method(self, method):
        try:
            self.route(method)
        except ProtocolError as err:
            self.send_error_json(err.code, err.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # a bug here must not take the server down
            self.send_error_json("ProviderError", f"internal error: {err}")

    def do_GET(self):
        self.handle_method("GET")

    def do_POST(self):
        self.handle_method("POST")

    def do_PUT(self):
        self.handle_method("PUT")

    def do_DELETE(self):
        self.handle_method("DELETE")

    def do_PATCH(self):
        self.handle_method("PATCH")

    # --- Streams.

    def watch(self):
        q = queue.Queue()
        b = self.backend
        with b.lock:
            b.watchers.add(q)
        self.close_connection = True
        try:
            self.start_chunked("application/x-ndjson")
            self.write_chunk('{"type":"READY"}\n')
            while True:
                try:
                    line = q.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    line = '{"type":"HEARTBEAT"}\n'
                self.write_chunk(line)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            with b.lock:
                b.watchers.discard(q)

    def logs(self, namespace, name, container, query):
        b = self.backend
        with b.lock:
            rec = b.pods.get(f"{namespace}/{name}")
            if rec is None:
                raise ProtocolError("NotFound", f"pod {namespace}/{name} not found")
            spec = next((c for c in (rec.pod.get("spec") or {}).get("containers") or [] if c["name"] == container), None)
            if spec is None:
                raise ProtocolError("NotFound", f'container "{container}" not found in pod "{name}"')
            stage, run_started, restarts, _, finished_at = rec.state(now_ms())
            annotations = rec.pod["metadata"].get("annotations") or {}
        if query.get("previous", ["false"])[0] in ("true", "1"):
            raise ProtocolError("ProviderError", f'previous terminated container "{container}" in pod "{name}" not found')
        if stage == "creating":
            raise ProtocolError("ProviderError", f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        timestamps = query.get("timestamps", ["false"])[0] in ("true", "1")
        follow = query.get("follow", ["false"])[0] in ("true", "1")
        tail = query.get("tailLines", [None])[0]
        if tail is not None and not tail.isdigit():
            raise ProtocolError("BadRequest", f"invalid value for tailLines: {tail!r} (expected an integer)")
        # The log: a start line, the annotation's lines, then a tick per second of running.
        lines = [(run_started, f"python-example {name}/{container}: started (image {spec.get('image', '')}, restart {restarts})")]
        lines += [(run_started, text) for text in str(annotations.get("mock.vk.io/log-lines", "")).split("\n") if text]
        end = finished_at or now_ms()
        ticks = max(0, (end - run_started) // 1000)
        lines += [(run_started + i * 1000, f"tick {i}") for i in range(1, ticks + 1)]
        if tail is not None:
            lines = lines[len(lines) - int(tail):] if int(tail) > 0 else []

        def fmt(at, text):
            return f"{datetime.fromtimestamp(at / 1000, tz=timezone.utc).isoformat().replace('+00:00', 'Z')} {text}\n" if timestamps else f"{text}\n"

        self.start_chunked("text/plain; charset=utf-8")
        try:
            if lines:
                self.write_chunk("".join(fmt(at, text) for at, text in lines))
            if follow and stage == "running":
                self.close_connection = True
                i = ticks
                while True:
                    i += 1
                    due = run_started + i * 1000
                    time.sleep(max(0, due - now_ms()) / 1000)
                    with b.lock:
                        current = b.pods.get(f"{namespace}/{name}")
                        if current is not rec or rec.state(now_ms())[0] != "running":
                            break
                    self.write_chunk(fmt(due, f"tick {i}"))
            self.end_chunked()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def stats(self):
        out = []
        with self.backend.lock:
            now = now_ms()
            for rec in self.backend.pods.values():
                stage, run_started, _, _, _ = rec.state(now)
                if stage != "running":
                    continue
                meta = rec.pod["metadata"]
                containers = [{"name": c["name"], "cpuUsageNanoCores": 5_000_000, "cpuUsageCoreNanoSeconds": 5_000 * (now - run_started), "memoryWorkingSetBytes": 32 << 20, "memoryUsageBytes": 36 << 20} for c in (rec.pod.get("spec") or {}).get("containers") or []]
                out.append({"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"], "containers": containers})
        return out


def main():
    parser = argparse.ArgumentParser(description="A remote provider for the TypeScript virtual kubelet, in Python (standard library only).")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port; the URL is printed)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", help="bearer token clients must send")
    parser.add_argument("--state-file", help="keep the pods in this file, so they survive restarts")
    parser.add_argument("--name", default="python-example", help="provider name (the node taint virtual-kubelet.io/provider=<name>)")
    parser.add_argument("--host-ip", default="127.0.0.1", help="host IP reported in pod statuses")
    parser.add_argument("--max-request-bytes", type=int, default=MAX_REQUEST_BYTES, help="larger request bodies get 413")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args()

    backend = Backend(args.name, args.host_ip, args.state_file)
    Handler.backend = backend
    Handler.token = args.token
    Handler.verbose = args.verbose
    Handler.max_request_bytes = args.max_request_bytes
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True

    def ticker():
        while True:
            time.sleep(0.1)
            try:
                backend.tick()
            except Exception as err:  # keep ticking whatever happens
                sys.stderr.write(f"tick failed: {err}\n")

    threading.Thread(target=ticker, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    host, port = server.server_address[:2]
    print(f"serving provider {args.name} at http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
