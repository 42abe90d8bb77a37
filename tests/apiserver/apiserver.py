#!/usr/bin/env python3
"""A small Kubernetes API server for picolet's node-mode tests.

No real kube-apiserver can run on the test machines, so this one follows the
documented API conventions for the resources a kubelet and a kubectl user
touch: pods (+status), nodes (+status), events, configmaps, secrets,
namespaces, and coordination.k8s.io leases. It serves:

- discovery (/api, /apis, group versions, /version) and a minimal OpenAPI v3
  document that tells kubectl the server validates fields itself;
- get, list, create, update (optimistic concurrency on resourceVersion),
  merge / strategic merge / JSON patch, delete with preconditions;
- watch with resourceVersion, bookmarks, timeoutSeconds, and 410 Gone
  ("too old resource version") after a compaction or a restart;
- field selectors (`a=b`, `a==b`, `a!=b` on dotted paths);
- kubectl's server-side printing (meta.k8s.io Table) for pods and nodes;
- graceful pod deletion: deletionTimestamp + deletionGracePeriodSeconds,
  and removal when the node deletes with grace 0;
- the scheduler's one job here: a pod created without spec.nodeName is
  bound to the first registered node.

TLS always; a client authenticates with a certificate signed by the CA
(--client-ca) or a bearer token (--token). The state can be kept in a file
(--state) so that a restarted server keeps its objects.

Test hooks under /_test/ (authenticated like the API, any method, so that
`kubectl get --raw` reaches them): `compact` (the next
watch from an older resourceVersion gets 410), `drop-watches` (close every
watch connection), `fail?code=N` / `recover` (answer every API request with
N), `slow?seconds=S` (answer every API request S seconds late; 0 ends it),
`requests` (the request log as JSON).
"""

import argparse
import copy
import os
import datetime
import http.server
import json
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse
import uuid

CORE = ("", "v1")
COORDINATION = ("coordination.k8s.io", "v1")

# (group, version, plural) -> kind, namespaced, short names, subresources
RESOURCES = {
    (*CORE, "pods"): ("Pod", True, ["po"], ["status"]),
    (*CORE, "nodes"): ("Node", False, ["no"], ["status"]),
    (*CORE, "events"): ("Event", True, ["ev"], []),
    (*CORE, "configmaps"): ("ConfigMap", True, ["cm"], []),
    (*CORE, "secrets"): ("Secret", True, [], []),
    (*CORE, "namespaces"): ("Namespace", False, ["ns"], []),
    (*COORDINATION, "leases"): ("Lease", True, [], []),
}

# Strategic merge: list fields merged by key (core/v1 patchMergeKey).
MERGE_KEYS = {
    "conditions": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "ephemeralContainerStatuses": "name",
    "podIPs": "ip",
    "hostIPs": "ip",
    "addresses": "type",
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc
    )


class ApiError(Exception):
    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self):
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


class Store:
    """Objects, a global resourceVersion, and the event history watches
    resume from."""

    def __init__(self, path):
        self.path = path
        self.cond = threading.Condition()
        self.rv = 0
        self.objects = {}  # (plural, namespace, name) -> object
        self.history = []  # (rv, plural, type, object)
        self.oldest = 0  # watches from a resourceVersion below this get 410
        self.watch_epoch = 0  # bumped by /_test/drop-watches
        if path:
            try:
                with open(path) as f:
                    saved = json.load(f)
                self.rv = saved["rv"]
                for o in saved["objects"]:
                    self.objects[(o["plural"], o["namespace"], o["name"])] = o["object"]
            except FileNotFoundError:
                pass
        # A fresh watch cache: history before now is gone.
        self.oldest = self.rv
        self.objects.setdefault(
            ("namespaces", "", "default"),
            {
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {
                    "name": "default",
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": "1",
                    "creationTimestamp": now_rfc3339(),
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )

    def save(self):
        if not self.path:
            return
        objects = [
            {"plural": p, "namespace": ns, "name": n, "object": o}
            for (p, ns, n), o in self.objects.items()
        ]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"rv": self.rv, "objects": objects}, f)
        os.replace(tmp, self.path)

    def record(self, plural, kind, obj):
        """Give `obj` the next resourceVersion and log the watch event.
        Called with the lock held."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, plural, kind, copy.deepcopy(obj)))
        self.save()
        self.cond.notify_all()

    def compact(self):
        with self.cond:
            self.history.clear()
            self.oldest = self.rv


def get_path(obj, dotted):
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return ""
        obj = obj.get(part, "")
    return "" if obj is None else str(obj)


def parse_selector(text):
    terms = []
    for term in filter(None, (text or "").split(",")):
        for op in ("!=", "==", "="):
            if op in term:
                k, v = term.split(op, 1)
                terms.append((k.strip(), op, v.strip()))
                break
        else:
            raise ApiError(400, "BadRequest", f"invalid field selector term {term!r}")
    return terms


def matches(obj, fields, labels):
    for k, op, v in fields:
        if (get_path(obj, k) == v) != (op != "!="):
            return False
    obj_labels = obj.get("metadata", {}).get("labels") or {}
    for k, op, v in labels:
        if (obj_labels.get(k) == v) != (op != "!="):
            return False
    return True


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge(target, patch):
    """Strategic merge patch for the fields of MERGE_KEYS: lists of objects
    merged by key, `$patch: delete` on an element, `$setElementOrder/<f>`
    respected; every other list replaced, maps merged as RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    out = dict(target)
    orders = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$setElementOrder/")}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif k in MERGE_KEYS and isinstance(v, list) and isinstance(out.get(k), list):
            key = MERGE_KEYS[k]
            merged = list(out[k])
            for item in v:
                idx = next(
                    (i for i, e in enumerate(merged) if e.get(key) == item.get(key)), None
                )
                if item.get("$patch") == "delete":
                    if idx is not None:
                        merged.pop(idx)
                elif idx is None:
                    merged.append(item)
                else:
                    merged[idx] = strategic_merge(merged[idx], item)
            out[k] = merged
        elif isinstance(v, dict):
            out[k] = strategic_merge(out.get(k), v)
        else:
            out[k] = copy.deepcopy(v)
    for k, order in orders.items():
        if k in MERGE_KEYS and isinstance(out.get(k), list):
            key = MERGE_KEYS[k]
            rank = {o.get(key): i for i, o in enumerate(order)}
            out[k] = sorted(out[k], key=lambda e: rank.get(e.get(key), len(rank)))
    return out


def json_patch(target, ops):
    """RFC 6902: add, remove, replace, test."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if isinstance(parent, list):
            last = len(parent) if last == "-" else int(last)
        kind = op["op"]
        if kind == "test":
            if parent[last] != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        elif kind == "remove":
            del parent[last]
        elif kind == "add" and isinstance(parent, list):
            parent.insert(last, op["value"])
        elif kind in ("add", "replace"):
            parent[last] = op["value"]
        else:
            raise ApiError(422, "Invalid", f"unsupported op {kind}")
    return doc


def age(ts):
    if not ts:
        return "<unknown>"
    secs = int((datetime.datetime.now(datetime.timezone.utc) - parse_time(ts)).total_seconds())
    secs = max(secs, 0)
    if secs < 120:
        return f"{secs}s"
    if secs < 600:
        return f"{secs // 60}m{secs % 60}s" if secs % 60 else f"{secs // 60}m"
    if secs < 3 * 3600:
        return f"{secs // 60}m"
    return f"{secs // 3600}h"


def pod_row(pod):
    """kubectl's pod columns, as pkg/printers/internalversion printPod."""
    spec, status = pod.get("spec", {}), pod.get("status", {})
    containers = spec.get("containers", [])
    inits = spec.get("initContainers", [])
    total, ready, restarts = len(containers), 0, 0
    reason = status.get("reason") or status.get("phase", "")
    sidecars = {c["name"] for c in inits if c.get("restartPolicy") == "Always"}
    total += len(sidecars)
    init_restarts, initializing = 0, False
    init_statuses = status.get("initContainerStatuses", [])
    for cs in init_statuses:
        restarts += cs.get("restartCount", 0)
        if cs["name"] in sidecars:
            init_restarts += cs.get("restartCount", 0)
            if cs.get("started") and cs.get("ready"):
                ready += 1
    for i, cs in enumerate(init_statuses):
        state = cs.get("state", {})
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if cs["name"] in sidecars and cs.get("started"):
            continue
        if term:
            reason = "Init:" + (
                term.get("reason")
                or (f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode')}")
            )
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(inits)}"
        initializing = True
        break
    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True"
        for c in status.get("conditions", [])
    )
    if not initializing or initialized:
        restarts, running = init_restarts, False
        for cs in reversed(status.get("containerStatuses", [])):
            restarts += cs.get("restartCount", 0)
            state = cs.get("state", {})
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode')}"
            elif cs.get("ready") and "running" in state:
                running = True
                ready += 1
        if reason == "Completed" and running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions", [])
            )
            reason = "Running" if pod_ready else "NotReady"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


POD_COLUMNS = [
    ("Name", "string", "name", 0),
    ("Ready", "string", "", 0),
    ("Status", "string", "", 0),
    ("Restarts", "string", "", 0),
    ("Age", "string", "", 0),
    ("IP", "string", "", 1),
    ("Node", "string", "", 1),
    ("Nominated Node", "string", "", 1),
    ("Readiness Gates", "string", "", 1),
]


def node_row(node):
    status = node.get("status", {})
    ready = next(
        (c for c in status.get("conditions", []) if c.get("type") == "Ready"), None
    )
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if ready is None:
        state = "Unknown"
    if node.get("spec", {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    info = status.get("nodeInfo", {})
    addr = {a["type"]: a["address"] for a in status.get("addresses", [])}
    return [
        node["metadata"]["name"],
        state,
        "<none>",
        age(node["metadata"].get("creationTimestamp")),
        info.get("kubeletVersion", ""),
        addr.get("InternalIP", "<none>"),
        addr.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


NODE_COLUMNS = [
    ("Name", "string", "name", 0),
    ("Status", "string", "", 0),
    ("Roles", "string", "", 0),
    ("Age", "string", "", 0),
    ("Version", "string", "", 0),
    ("Internal-IP", "string", "", 1),
    ("External-IP", "string", "", 1),
    ("OS-Image", "string", "", 1),
    ("Kernel-Version", "string", "", 1),
    ("Container-Runtime", "string", "", 1),
]


def table(plural, items, rv):
    if plural == "pods":
        columns, row = POD_COLUMNS, pod_row
    elif plural == "nodes":
        columns, row = NODE_COLUMNS, node_row
    else:
        columns = [("Name", "string", "name", 0), ("Age", "string", "", 0)]

        def row(o):
            return [o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))]

    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(rv)},
        "columnDefinitions": [
            {"name": n, "type": t, "format": f, "description": n, "priority": p}
            for n, t, f, p in columns
        ],
        "rows": [
            {
                "cells": row(o),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                },
            }
            for o in items
        ],
    }


def pod_defaults(pod):
    """The defaults the real API server fills in that a kubelet reads."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault(
        "tolerations",
        [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ],
    )
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        image = c.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
    pod.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, args):
        super().__init__(addr, handler)
        self.args = args
        self.store = Store(args.state)
        self.tokens = set(args.token or [])
        self.failing = None
        self.delay = 0.0
        self.requests = []
        self.log_lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ssl = ctx

    def handle_error(self, request, client_address):
        # A client that gives up on TLS (an untrusted certificate) is a test
        # case, not a server fault.
        pass

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake runs in the request's thread, so that a client that
        # never speaks blocks only itself.
        return self.ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "picolet-test-apiserver"

    def log_message(self, fmt, *args):
        pass

    # --- plumbing -------------------------------------------------------

    def setup(self):
        super().setup()
        try:
            self.connection.settimeout(30)
            self.connection.do_handshake()
            self.connection.settimeout(None)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            raise

    def send_json(self, code, body, content_type="application/json"):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        # Read before any answer, errors included: a body left unread would
        # be taken for the next request on a kept-alive connection.
        n = int(self.headers.get("Content-Length") or 0)
        self.raw = self.rfile.read(n) if n else b""

    def body(self):
        raw = self.raw
        if not raw:
            return None
        if "protobuf" in self.headers.get("Content-Type", ""):
            raise ApiError(415, "UnsupportedMediaType", "this test server speaks JSON only")
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", "the request body is not JSON")

    def user(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in self.server.tokens:
            return "token"
        cert = self.connection.getpeercert()
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
        return None

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        with self.server.log_lock:
            self.server.requests.append(
                {
                    "method": method,
                    "path": url.path,
                    "query": query,
                    "contentType": self.headers.get("Content-Type", ""),
                    "user": None,
                }
            )
            entry = self.server.requests[-1]
        self.entry = entry
        try:
            self.read_body()
            user = self.user()
            entry["user"] = user
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if url.path.startswith("/_test/"):
                return self.test_hook(url.path[len("/_test/"):], query)
            if self.server.delay:
                time.sleep(self.server.delay)
            if self.server.failing:
                raise ApiError(self.server.failing, "InternalError", "the test made the server fail")
            self.route(method, url.path, query)
        except ApiError as e:
            self.send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def test_hook(self, name, query):
        self.body()
        if name == "compact":
            self.server.store.compact()
        elif name == "drop-watches":
            with self.server.store.cond:
                self.server.store.watch_epoch += 1
                self.server.store.cond.notify_all()
        elif name == "fail":
            self.server.failing = int(query.get("code", "500"))
        elif name == "recover":
            self.server.failing = None
        elif name == "slow":
            self.server.delay = float(query.get("seconds", "0"))
        elif name == "requests":
            with self.server.log_lock:
                return self.send_json(200, self.server.requests)
        else:
            raise ApiError(404, "NotFound", name)
        self.send_json(200, {"ok": True})

    # --- discovery ------------------------------------------------------

    def discovery(self, path):
        if path in ("/api", "/api/"):
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.headers.get("Host", "")}]}
        if path in ("/apis", "/apis/"):
            group, version = COORDINATION
            gv = {"groupVersion": f"{group}/{version}", "version": version}
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": group, "versions": [gv], "preferredVersion": gv}]}
        if path == "/version":
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-picolet-test",
                    "platform": "linux/amd64"}
        for g, v in (CORE, COORDINATION):
            prefix = "/api/v1" if g == "" else f"/apis/{g}/{v}"
            if path == prefix:
                resources = []
                for (rg, rv, plural), (kind, namespaced, short, subs) in RESOURCES.items():
                    if (rg, rv) != (g, v):
                        continue
                    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
                    resources.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                                      "kind": kind, "verbs": verbs, "shortNames": short})
                    for s in subs:
                        resources.append({"name": f"{plural}/{s}", "singularName": "", "namespaced": namespaced,
                                          "kind": kind, "verbs": ["get", "patch", "update"]})
                return {"kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": f"{g}/{v}" if g else v, "resources": resources}
        if path == "/openapi/v3":
            return {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=1"},
                              "apis/coordination.k8s.io/v1": {
                                  "serverRelativeURL": "/openapi/v3/apis/coordination.k8s.io/v1?hash=1"}}}
        if path.startswith("/openapi/v3/"):
            return self.openapi(path[len("/openapi/v3/"):])
        return None

    def openapi(self, gv_path):
        """Just enough OpenAPI v3 for kubectl to see that PATCH takes
        fieldValidation: it then leaves validation to the server."""
        group, version = (CORE if gv_path == "api/v1" else COORDINATION)
        paths = {}
        for (g, v, plural), (kind, namespaced, _, _) in RESOURCES.items():
            if (g, v) != (group, version):
                continue
            base = ("/api/v1" if g == "" else f"/apis/{g}/{v}") + (
                "/namespaces/{namespace}" if namespaced else "")
            gvk = {"group": g, "version": v, "kind": kind}
            op = {"x-kubernetes-group-version-kind": gvk,
                  "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                  "responses": {}}
            paths[f"{base}/{plural}/{{name}}"] = {"patch": dict(op, **{"x-kubernetes-action": "patch"})}
            paths[f"{base}/{plural}"] = {"post": dict(op, **{"x-kubernetes-action": "post"})}
        return {"openapi": "3.0.0", "info": {"title": "picolet test", "version": "v1"},
                "paths": paths, "components": {"schemas": {}}}

    # --- resources ------------------------------------------------------

    def route(self, method, path, query):
        found = self.discovery(path) if method == "GET" else None
        if found is not None:
            return self.send_json(200, found)
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or (group, version, rest[0]) not in RESOURCES:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        plural = rest[0]
        kind, namespaced, _, subs = RESOURCES[(group, version, plural)]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in subs:
            raise ApiError(404, "NotFound", f"{plural}/{sub} is not served")
        api_version = f"{group}/{version}" if group else version
        r = Resource(self.server.store, plural, kind, api_version, namespaced)
        if method == "GET" and name is None:
            if query.get("watch") in ("1", "true"):
                return self.watch(r, namespace, query)
            return self.list(r, namespace, query)
        if method == "GET":
            return self.send_json(200, r.get(namespace, name))
        body = self.body()
        if method in ("DELETE", "PATCH"):
            self.entry["body"] = body
        if method == "POST" and name is None:
            return self.send_json(201, r.create(namespace, body))
        if method == "PUT":
            return self.send_json(200, r.update(namespace, name, body, sub))
        if method == "PATCH":
            kind_of_patch = self.headers.get("Content-Type", "").split(";")[0]
            return self.send_json(200, r.patch(namespace, name, body, kind_of_patch, sub))
        if method == "DELETE":
            return self.send_json(200, r.delete(namespace, name, body or {}, query))
        raise ApiError(405, "MethodNotAllowed", f"{method} {path}")

    def wants_table(self):
        return "as=Table" in self.headers.get("Accept", "")

    def list(self, r, namespace, query):
        fields, labels = parse_selector(query.get("fieldSelector")), parse_selector(query.get("labelSelector"))
        with r.store.cond:
            items = [copy.deepcopy(o) for o in r.all(namespace) if matches(o, fields, labels)]
            rv = r.store.rv
        if self.wants_table():
            return self.send_json(200, table(r.plural, items, rv))
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        self.send_json(200, {"kind": f"{r.kind}List", "apiVersion": r.api_version,
                             "metadata": {"resourceVersion": str(rv)}, "items": items})

    def watch(self, r, namespace, query):
        fields, labels = parse_selector(query.get("fieldSelector")), parse_selector(query.get("labelSelector"))
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        store = r.store
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        since = query.get("resourceVersion", "")
        with store.cond:
            epoch = store.watch_epoch
            if since in ("", "0"):
                pending = [("ADDED", copy.deepcopy(o)) for o in r.all(namespace) if matches(o, fields, labels)]
                last = store.rv
            elif int(since) < store.oldest:
                gone = ApiError(410, "Expired", f"too old resource version: {since} ({store.oldest})").status()
                pending, last = [("ERROR", gone)], None
            else:
                pending, last = [], int(since)
        try:
            while True:
                for kind, obj in pending:
                    self.chunk({"type": kind, "object": obj})
                if last is None:
                    break
                with store.cond:
                    store.cond.wait_for(
                        lambda: store.rv > last or store.watch_epoch != epoch or time.monotonic() >= deadline,
                        timeout=max(0.0, min(1.0, deadline - time.monotonic())),
                    )
                    if store.watch_epoch != epoch:
                        # Dropped: close the connection without ending the body.
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if last < store.oldest:
                        gone = ApiError(410, "Expired", f"too old resource version: {last} ({store.oldest})").status()
                        pending, last = [("ERROR", gone)], None
                        continue
                    pending = [
                        (kind, copy.deepcopy(obj))
                        for rv, plural, kind, obj in store.history
                        if rv > last and plural == r.plural and r.in_namespace(obj, namespace)
                        and matches(obj, fields, labels)
                    ]
                    last = store.rv
                    if time.monotonic() >= deadline:
                        if bookmarks:
                            pending.append(("BOOKMARK", r.bookmark(last)))
                        for kind, obj in pending:
                            self.chunk({"type": kind, "object": obj})
                        break
                    if not pending and bookmarks:
                        pending = [("BOOKMARK", r.bookmark(last))]
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def chunk(self, event):
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class Resource:
    def __init__(self, store, plural, kind, api_version, namespaced):
        self.store, self.plural, self.kind = store, plural, kind
        self.api_version, self.namespaced = api_version, namespaced

    def in_namespace(self, obj, namespace):
        return not namespace or obj["metadata"].get("namespace", "") == namespace

    def all(self, namespace):
        return [o for (p, ns, _), o in sorted(self.store.objects.items())
                if p == self.plural and (not namespace or ns == namespace)]

    def bookmark(self, rv):
        return {"kind": self.kind, "apiVersion": self.api_version, "metadata": {"resourceVersion": str(rv)}}

    def key(self, namespace, name):
        return (self.plural, namespace if self.namespaced else "", name)

    def not_found(self, name):
        group = self.api_version.split("/")[0] if "/" in self.api_version else ""
        resource = f"{self.plural}.{group}" if group else self.plural
        return ApiError(404, "NotFound", f'{resource} "{name}" not found')

    def get(self, namespace, name):
        with self.store.cond:
            obj = self.store.objects.get(self.key(namespace, name))
            if obj is None:
                raise self.not_found(name)
            return copy.deepcopy(obj)

    def create(self, namespace, obj):
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "no object in the request")
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{self.kind} is invalid: metadata.name: Required value")
        if self.namespaced:
            ns = meta.get("namespace") or namespace or "default"
            if namespace and ns != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object does not match the request")
            meta["namespace"] = ns
        obj["kind"], obj["apiVersion"] = self.kind, self.api_version
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("deletionTimestamp", None)
        if self.plural == "pods":
            pod_defaults(obj)
        with self.store.cond:
            key = self.key(meta.get("namespace", ""), name)
            if key in self.store.objects:
                raise ApiError(409, "AlreadyExists", f'{self.plural} "{name}" already exists')
            if self.plural == "pods" and not obj["spec"].get("nodeName"):
                nodes = sorted(n for (p, _, n) in self.store.objects if p == "nodes")
                if nodes:
                    obj["spec"]["nodeName"] = nodes[0]
            self.store.objects[key] = obj
            self.store.record(self.plural, "ADDED", obj)
            return copy.deepcopy(obj)

    def replace(self, namespace, name, change, sub, expect_rv=None, expect_uid=None):
        """Apply `change(old) -> new` under the lock; the main resource keeps
        its status and the status subresource keeps everything else."""
        with self.store.cond:
            key = self.key(namespace, name)
            old = self.store.objects.get(key)
            if old is None:
                raise self.not_found(name)
            if expect_uid and expect_uid != old["metadata"]["uid"]:
                raise ApiError(409, "Conflict",
                               f"Precondition failed: UID in precondition: {expect_uid}, "
                               f"UID in object meta: {old['metadata']['uid']}")
            if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {self.plural} "{name}": the object has been '
                               "modified; please apply your changes to the latest version and try again")
            new = change(copy.deepcopy(old))
            if sub == "status":
                new = dict(old, status=new.get("status", {}))
            elif "status" in old and self.plural in ("pods", "nodes"):
                new["status"] = old["status"]
            for fixed in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                          "deletionGracePeriodSeconds"):
                if fixed in old["metadata"]:
                    new.setdefault("metadata", {})[fixed] = old["metadata"][fixed]
            new["kind"], new["apiVersion"] = self.kind, self.api_version
            self.store.objects[key] = new
            self.store.record(self.plural, "MODIFIED", new)
            return copy.deepcopy(new)

    def update(self, namespace, name, obj, sub):
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "no object in the request")
        expect = obj.get("metadata", {}).get("resourceVersion")
        return self.replace(namespace, name, lambda old: obj, sub, expect)

    def patch(self, namespace, name, patch, content_type, sub):
        if content_type == "application/merge-patch+json":
            apply = merge_patch
        elif content_type == "application/strategic-merge-patch+json":
            apply = strategic_merge
        elif content_type == "application/json-patch+json":
            apply = json_patch
        else:
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
        meta = patch.get("metadata", {}) if isinstance(patch, dict) else {}
        return self.replace(namespace, name, lambda old: apply(old, patch), sub,
                            meta.get("resourceVersion"), meta.get("uid"))

    def delete(self, namespace, name, options, query):
        grace = options.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        pre = options.get("preconditions") or {}
        with self.store.cond:
            key = self.key(namespace, name)
            obj = self.store.objects.get(key)
            if obj is None:
                raise self.not_found(name)
            meta = obj["metadata"]
            if pre.get("uid") and pre["uid"] != meta["uid"]:
                raise ApiError(409, "Conflict",
                               f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise ApiError(409, "Conflict", "Precondition failed: resourceVersion")
            if self.plural == "pods":
                # The pod strategy: graceful unless unscheduled or terminal.
                phase = obj.get("status", {}).get("phase")
                if not obj["spec"].get("nodeName") or phase in ("Succeeded", "Failed"):
                    grace = 0
                elif grace is None:
                    grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
                grace = int(grace)
                current = meta.get("deletionGracePeriodSeconds")
                if grace > 0 and (current is None or grace < current):
                    meta["deletionGracePeriodSeconds"] = grace
                    meta["deletionTimestamp"] = (
                        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=grace)
                    ).strftime("%Y-%m-%dT%H:%M:%SZ")
                    self.store.record(self.plural, "MODIFIED", obj)
                    return copy.deepcopy(obj)
                if grace > 0:
                    return copy.deepcopy(obj)
            del self.store.objects[key]
            meta.setdefault("deletionTimestamp", now_rfc3339())
            self.store.record(self.plural, "DELETED", obj)
            return copy.deepcopy(obj)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    p.add_argument("--token", action="append")
    p.add_argument("--state")
    args = p.parse_args()
    server = Server(("127.0.0.1", args.port), Handler, args)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
