#!/usr/bin/env python3
"""Checks each pod of the Kubernetes manifests against the real binaries.

For every StatefulSet pod (each ordinal) and one Deployment pod, this
renders the container's environment as the kubelet would (downward-API
fields, `$(VAR)` references, optional Secret keys left unset) and runs
`<binary> <args> --check-config` with exactly that environment: the binary
parses it with its own flag/env/config parser and refuses what it would
refuse at start. On top of that:

- every environment variable set is one the binary reads (`[env: X]` in its
  `--help`, `env("X")` in gateway/src/config.rs, RUST_LOG) or one another
  value references (`$(POD_NAME)`);
- meta-service: ids are 1..n by ordinal and only ordinal 0 initialises,
  with every member as a voter; each advertises `<pod>.<service>`;
- storage-node: id = ordinal + 1, certificate `storage-<id>`, advertises
  `<pod>.<service>`, data on the claimed volume, certificates on the Secret;
- the Prometheus annotation port and every probe port are container ports,
  and the scrape port is the port the binary serves HTTP on;
- every container gets the cluster's config file (`CONFIG_FILE` naming a
  file of a mounted ConfigMap): the ConfigMap's files are written to a
  temporary folder that stands in for the mount, so the binary parses the
  very file the pod would read (an unknown or refused key fails the check),
  and the `vectordb-config` ConfigMap's `config.yml` must be
  deploy/config.example.yml verbatim.

Usage: check_pods.py <bin dir> <manifest>...
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
errors = []


def fail(pod, msg):
    errors.append(f"{pod}: {msg}")


def env_read_by(binary, bin_dir):
    """Environment variables the binary reads."""
    help_text = subprocess.run(
        [str(bin_dir / binary), "--help"], capture_output=True, text=True, check=True
    ).stdout
    names = set(re.findall(r"\[env: ([A-Z0-9_]+)", help_text)) | {"RUST_LOG"}
    if binary == "gateway":
        # Read by the config loader itself, not by clap.
        src = (ROOT / "gateway/src/config.rs").read_text()
        names |= set(re.findall(r'env\("([A-Z0-9_]+)"\)', src))
    return names


def render_env(env_list, pod_name, pod_ip):
    """The container's environment as the kubelet builds it."""
    out = {}
    for e in env_list:
        name = e["name"]
        if "value" in e:
            # $(VAR) expands to an earlier variable; $$ is a literal $.
            def expand(m):
                if m.group(0) == "$$":
                    return "$"
                return out.get(m.group(1), m.group(0))

            out[name] = re.sub(r"\$\$|\$\(([A-Za-z0-9_]+)\)", expand, str(e["value"]))
        else:
            src = e.get("valueFrom", {})
            field = src.get("fieldRef", {}).get("fieldPath")
            if field == "metadata.name":
                out[name] = pod_name
            elif field == "status.podIP":
                out[name] = pod_ip
            elif "secretKeyRef" in src and src["secretKeyRef"].get("optional"):
                continue  # the Secret may be absent: the binary must start without it
            else:
                raise SystemExit(f"{pod_name}: env {name}: unsupported source {src}")
    return out


def referenced(env_list):
    refs = set()
    for e in env_list:
        refs |= set(re.findall(r"\$\(([A-Za-z0-9_]+)\)", str(e.get("value", ""))))
    return refs


def run_check(bin_dir, binary, args, env, pod):
    proc = subprocess.run(
        [str(bin_dir / binary), *args, "--check-config"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        fail(pod, f"{binary} refused its configuration:\n{proc.stderr.strip()[:2000]}")
        return {}
    line = proc.stdout.strip().splitlines()[-1]
    print(f"  {pod}: {line}")
    return dict(kv.split("=", 1) for kv in line.split(" ")[3:] if "=" in kv)


def mounts(container, spec, kind):
    """Mount paths of volumes of `kind` ('secret' or 'claim')."""
    claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
    secrets = {
        v["name"] for v in spec["template"]["spec"].get("volumes", []) if "secret" in v
    }
    want = claims if kind == "claim" else secrets
    return [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in want]


def under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def check_ports(pod, container, annotations, served_port):
    ports = {p["containerPort"] for p in container.get("ports", [])}
    scrape = annotations.get("prometheus.io/port")
    if annotations.get("prometheus.io/scrape") == "true":
        if scrape is None or int(scrape) not in ports:
            fail(pod, f"scrape port {scrape} is not a container port {sorted(ports)}")
        if scrape is not None and served_port is not None and int(scrape) != served_port:
            fail(pod, f"scrape port {scrape} but the binary serves /metrics on {served_port}")
    for probe in ("readinessProbe", "livenessProbe"):
        p = container.get(probe, {})
        port = p.get("httpGet", {}).get("port")
        if port is not None and port not in ports:
            fail(pod, f"{probe} port {port} is not a container port")
        if "exec" in p:
            for m in re.findall(r"127\.0\.0\.1:(\d+)", " ".join(p["exec"]["command"])):
                if int(m) not in ports:
                    fail(pod, f"{probe} calls port {m}, not a container port")


def config_mounts(container, spec, configmaps, tmp):
    """Writes the ConfigMap volumes' files under `tmp`; returns
    {mountPath: local folder}."""
    volumes = {
        v["name"]: v["configMap"]["name"]
        for v in spec["template"]["spec"].get("volumes", [])
        if "configMap" in v
    }
    out = {}
    for m in container.get("volumeMounts", []):
        if m["name"] not in volumes:
            continue
        cm = volumes[m["name"]]
        if cm not in configmaps:
            raise SystemExit(f"ConfigMap {cm} is not in the manifests")
        local = Path(tmp) / m["name"]
        local.mkdir(exist_ok=True)
        for fname, text in configmaps[cm].items():
            (local / fname).write_text(text)
        out[m["mountPath"]] = str(local)
    return out


def localise(env, mounts):
    """Paths inside a mounted ConfigMap point at the local copy instead."""
    for name, value in env.items():
        for mount, local in mounts.items():
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                env[name] = local + value[len(mount.rstrip("/")):]
    return env


def port_of(addr):
    return int(addr.rsplit(":", 1)[1]) if addr and ":" in addr else None


def main():
    bin_dir = Path(sys.argv[1])
    docs = []
    for f in sys.argv[2:]:
        docs += [d for d in yaml.safe_load_all(Path(f).read_text()) if d]
    workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    if not workloads:
        raise SystemExit("no workloads found")
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    example = (ROOT / "deploy/config.example.yml").read_text()
    if configmaps.get("vectordb-config", {}).get("config.yml") != example:
        errors.append("ConfigMap vectordb-config: config.yml differs from deploy/config.example.yml")
    tmp = tempfile.mkdtemp(prefix="check-pods-")
    for w in workloads:
        spec = w["spec"]
        name = w["metadata"]["name"]
        template = spec["template"]
        annotations = template["metadata"].get("annotations", {})
        (container,) = template["spec"]["containers"]
        binary, *args = container["args"]
        known = env_read_by(binary, bin_dir)
        refs = referenced(container.get("env", []))
        for e in container.get("env", []):
            if e["name"] not in known and e["name"] not in refs:
                fail(name, f"env {e['name']} is read by no {binary} parser (known: {sorted(known)})")
        stateful = w["kind"] == "StatefulSet"
        pods = [f"{name}-{i}" for i in range(spec["replicas"])] if stateful else [f"{name}-5d9c7b-x2x4z"]
        initialisers = []
        ids = []
        print(f"{w['kind']} {name} ({binary}):")
        local_mounts = config_mounts(container, spec, configmaps, tmp)
        for ordinal, pod in enumerate(pods):
            env = render_env(container.get("env", []), pod, f"10.0.0.{ordinal + 10}")
            config_file = env.get("CONFIG_FILE", "")
            if not any(config_file.startswith(m.rstrip("/") + "/") for m in local_mounts):
                fail(pod, f"CONFIG_FILE {config_file!r} is not a file of a mounted ConfigMap")
            env = localise(env, local_mounts)
            cfg = run_check(bin_dir, binary, args, env, pod)
            if not cfg:
                continue
            own_host = f"{pod}.{spec.get('serviceName', '')}"
            if binary == "meta-service":
                ids.append(int(cfg["id"]))
                if cfg["advertise"].rsplit(":", 1)[0] != own_host:
                    fail(pod, f"advertises {cfg['advertise']}, not {own_host}")
                if cfg["initialises"] != "no":
                    initialisers.append((ordinal, cfg["initialises"]))
                if not under(cfg["data_dir"], mounts(container, spec, "claim")):
                    fail(pod, f"data_dir {cfg['data_dir']} is not on a claimed volume")
                check_ports(pod, container, annotations, port_of(cfg["listen"]))
            elif binary == "storage-node":
                ids.append(int(cfg["id"]))
                if int(cfg["id"]) != ordinal + 1:
                    fail(pod, f"id {cfg['id']}, expected ordinal + 1 = {ordinal + 1}")
                if cfg["cert_name"] != f"storage-{ordinal + 1}":
                    fail(pod, f"certificate {cfg['cert_name']}")
                if cfg["advertise"].rsplit(":", 1)[0] != own_host:
                    fail(pod, f"advertises {cfg['advertise']}, not {own_host}")
                if not under(cfg["data_dir"], mounts(container, spec, "claim")):
                    fail(pod, f"data_dir {cfg['data_dir']} is not on a claimed volume")
                if cfg["certs_dir"] not in mounts(container, spec, "secret"):
                    fail(pod, f"certs_dir {cfg['certs_dir']} is not a mounted Secret")
                if cfg["gossip"] == "off":
                    fail(pod, "gossip is off")
                check_ports(pod, container, annotations, port_of(cfg["http_listen"]))
            elif binary == "gateway":
                if cfg["certs_dir"] not in mounts(container, spec, "secret"):
                    fail(pod, f"certs_dir {cfg['certs_dir']} is not a mounted Secret")
                check_ports(pod, container, annotations, port_of(cfg["listen"]))
        if binary == "meta-service":
            members = list(range(1, len(pods) + 1))
            if sorted(ids) != members:
                fail(name, f"member ids {ids}, expected {members}")
            if initialisers != [(0, ",".join(map(str, members)))]:
                fail(name, f"initialising members {initialisers}: only ordinal 0, with voters {members}")
        if binary == "storage-node" and len(set(ids)) != len(ids):
            fail(name, f"duplicate node ids {ids}")
    if errors:
        print("\n".join(f"FAIL {e}" for e in errors), file=sys.stderr)
        sys.exit(1)
    print("pods: every container's command line and environment accepted")


if __name__ == "__main__":
    main()
