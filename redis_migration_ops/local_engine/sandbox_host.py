"""The sandbox host: the local engine's "EC2 instance", isolated from the machine it runs on.

Isolation (measured on this machine, as root): ``unshare --mount --net --pid --fork`` gives the
sandbox its own mounts, network and process tree. Inside, a tmpfs holds an overlay
``lowerdir=/`` whose upper layer takes every write, and the sandbox ``chroot``s into it: the
install script sees the machine's real Debian (dpkg database, ``redis-server`` package, users)
but nothing it writes reaches the machine's own files, and its mounts vanish with the mount
namespace.
The overlay's upper layer (what the sandbox writes) is on the machine's disk, next to the workdir
(``<workdir>-disk``, removed by :meth:`SandboxHost.stop`), as an instance's root is on its EBS
volume: on tmpfs, every byte of Redis's AOF and RDB would be unreclaimable memory charged to
Redis's cgroup; on disk it is page cache the kernel reclaims before Redis reaches its
``MemoryMax``, which is what the budget (``redis_migration/host/budget.py``) counts on. Redis's
cgroup limits are real: see ``ec2/sandbox_cgroups.py`` and the ``systemctl`` below.
``/proc/sys`` and ``/sys`` are read-only inside, because ``vm.overcommit_memory`` and the THP
switch are global to the kernel: a sandbox must not change them for the machine. The sandbox's
network namespace has only ``lo`` with 127.0.0.1 and the instance's private IP, so Redis can
bind exactly what it binds on EC2 while the machine's own port 6379 is never touched.

Why ``unshare`` + ``nsenter`` rather than containers: no container engine exists on these
machines, and util-linux is everywhere. The sandbox's PID 1 is a tiny reaper; killing it makes the
kernel kill everything in the PID namespace, which is what makes :meth:`SandboxHost.stop`
complete and idempotent.

The sandbox dies with the process that owns it, however that process ends (SIGKILL included):
``setpriv --pdeathsig KILL`` makes the kernel kill ``unshare`` when its parent goes, and
``unshare --kill-child`` does the same for the sandbox's PID 1 when ``unshare`` goes, which takes
the whole PID namespace (and with it the mount namespace and its tmpfs) down. The parent-death
signal fires when the *thread* that forked the child exits, not the process, so ``unshare`` is
forked by a keeper thread that lives exactly as long as the sandbox, and each ``nsenter`` by the
thread that waits for it. ``max_lifetime_s`` stays as a last bound.

There is no systemd in the sandbox, so a minimal ``systemctl`` (see ``_FAKE_SYSTEMCTL``) is
installed only inside it. It reads the distro's real unit file (and its ``<unit>.d/*.conf``
drop-ins) and runs its ``ExecStart`` as the unit's ``User``/``Group`` with ``Type=notify``
readiness through a real ``NOTIFY_SOCKET``, so the install script's systemd path runs unchanged.
The service's environment is systemd's: ``Environment=``, then each ``EnvironmentFile=`` in order
(a later file overrides; a missing file fails the start unless its name starts with ``-``),
parsed as systemd.exec(5) says for the cases our hosts use (comments, ``KEY=VALUE``, quotes);
``StandardOutput=file:``/``append:`` send the output to a file. Each service gets a cgroup of its
own, ``/system.slice/<unit>``, with the unit's ``MemoryMax=``, ``MemoryHigh=``, ``CPUWeight=`` and
``IOWeight=`` applied as systemd applies them on the machine's hierarchy (cgroup v1 here:
``memory.limit_in_bytes``, ``cpu.shares``, ``blkio.weight`` where the kernel has it; see
``ec2/sandbox_cgroups.py``), and ``OOMScoreAdjust=`` is written to the process before it execs.
``systemctl show`` answers ``MainPID``, ``LoadState``, ``ActiveState``, ``FragmentPath``,
``EnvironmentFiles`` (one line per file, ``PATH (ignore_errors=yes|no)``, as systemd prints them),
``MemoryMax``/``MemoryHigh`` (bytes or ``infinity``), ``CPUWeight``/``IOWeight`` (or
``[not set]``), ``OOMScoreAdjust``, ``NRestarts``, ``ActiveEnterTimestampMonotonic`` and
``ControlGroup``. Not emulated: ``Restart=`` (``NRestarts`` stays 0), the unit's sandboxing
directives (``ProtectSystem=`` ...), specifiers, the journal.

Reaching the sandbox's Redis from the machine: :meth:`SandboxHost.loopback_address` starts a
forwarder listening on the machine's 127.0.0.1 whose dialing thread has entered the sandbox's
network namespace with ``setns(2)`` (``ctypes``; Python 3.11 has no ``os.setns``). A socket
belongs to the namespace it was created in, so that thread dials the sandbox's 127.0.0.1 and the
bytes are pumped by ordinary threads. Chosen over socat (not installed) and over a helper process
(one more thing to clean up): the forwarder dies with :meth:`SandboxHost.stop`. Every connection
on either side is to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from redis_migration_ops.local_engine.ec2.loopback_relay import LoopbackRelay
from redis_migration_ops.local_engine.ec2.sandbox_cgroups import SandboxCgroups

CLONE_NEWNET = 0x40000000

# PATH and environment the SSM agent gives a command: the machine's environment never leaks in.
_SANDBOX_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}

# The kernel kills the child when the thread that forked it exits (prctl PR_SET_PDEATHSIG).
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"]

# Runs as root outside the chroot, inside the new namespaces: builds the copy-on-write root.
_SETUP_SCRIPT = r"""
set -eu
base=$1
private_ip=$2
max_lifetime_s=$3
cgroups=$4
disk=$5
mount -t tmpfs -o mode=0700,size=2g redis-migration-sandbox "$base"
# The upper layer on the machine's disk (page cache the kernel can reclaim), or in the tmpfs.
layer=${disk:-$base}
mkdir -p "$layer/upper" "$layer/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$layer/upper,workdir=$layer/work" "$base/root"
root=$base/root
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
# Global kernel knobs (overcommit, THP) must not be changed from inside: read-only, as in a container.
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount --bind /sys "$root/sys"
mount -o remount,bind,ro "$root/sys"
# The sandbox's own cgroups (ec2/sandbox_cgroups.py), writable, where its systemctl applies a
# unit's limits; nothing else of the machine's cgroup tree is visible.
if [ -n "$cgroups" ]; then
    case "$cgroups" in
        unified=*) mount --bind "${cgroups#unified=}" "$root/sys/fs/cgroup" ;;
        *)
            mount -t tmpfs -o mode=0755 cgroup "$root/sys/fs/cgroup"
            for pair in $cgroups; do
                mkdir -p "$root/sys/fs/cgroup/${pair%%=*}"
                mount --bind "${pair#*=}" "$root/sys/fs/cgroup/${pair%%=*}"
            done
            mount -o remount,ro "$root/sys/fs/cgroup"
            ;;
    esac
fi
# A booted host starts with an empty /run and /tmp.
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
ip link set lo up
ip addr add "$private_ip/32" dev lo
exec chroot "$root" /usr/bin/python3 -c "$INIT_PROGRAM" "$max_lifetime_s"
"""

# PID 1 of the sandbox: announces readiness, then reaps orphans (the daemons systemctl starts)
# until killed or until its bounded lifetime ends.
_INIT_PROGRAM = r"""
import os, sys, time
print("SANDBOX_READY", flush=True)
os.close(1)
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pid = 0
    if pid == 0:
        time.sleep(0.2)
"""

# A minimal systemctl for a host without systemd; installed only inside the sandbox root.
_FAKE_SYSTEMCTL = r'''#!/usr/bin/python3
"""Minimal systemctl for the redis-migration sandbox (no systemd there).

Reads real unit files, runs ExecStart as User/Group with UMask and RuntimeDirectory, waits for
READY=1 on NOTIFY_SOCKET for Type=notify, records MainPID. Puts each service in its own cgroup
(/system.slice/<unit>) and applies its resource limits there as systemd does (src/core/cgroup.c),
and its OOMScoreAdjust= to the process. Not emulated: Restart=, sandboxing directives, the journal.
"""
import grp, json, os, pwd, shlex, signal, socket, sys, time

UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"]
STATE_DIR = "/run/systemd/sandbox-state"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 90.0
CGROUP_FS = "/sys/fs/cgroup"
LEGACY_CONTROLLERS = ("memory", "cpu", "blkio")
SIZE_SUFFIXES = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def unit_name(name):
    return name if "." in name else name + ".service"


def find_unit(name):
    for d in UNIT_DIRS:
        path = os.path.join(d, name)
        if os.path.exists(path):
            return os.path.realpath(path)
    return None


def parse_unit(path, name=None):
    """The unit file, then its drop-ins (<dir>/<name>.d/*.conf, by file name); an empty assignment
    resets a setting, as in systemd."""
    sections = {}
    files = [path]
    if name:
        dropins = {}
        for d in UNIT_DIRS:
            conf_dir = os.path.join(d, name + ".d")
            if os.path.isdir(conf_dir):
                for entry in os.listdir(conf_dir):
                    if entry.endswith(".conf") and entry not in dropins:
                        dropins[entry] = os.path.join(conf_dir, entry)
        files += [dropins[entry] for entry in sorted(dropins)]
    for file_path in files:
        current = None
        with open(file_path) as f:
            for raw in f:
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("[") and line.endswith("]"):
                    current = sections.setdefault(line[1:-1], {})
                    continue
                key, _, value = line.partition("=")
                if current is None:
                    continue
                if value.strip() == "":
                    current.pop(key.strip(), None)
                    continue
                current.setdefault(key.strip(), []).append(value.strip())
    return sections


def environment_files(service):
    """[(path, optional)] in order: EnvironmentFile=[-]PATH."""
    found = []
    for value in service.get("EnvironmentFile", []):
        optional = value.startswith("-")
        found.append((value[1:] if optional else value, optional))
    return found


def read_environment_file(path):
    """KEY=VALUE lines: comments (# or ;) and blank lines skipped, whitespace around the key and
    the value dropped, a value in double quotes unescaped, one in single quotes taken as is."""
    env = {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not key or key[0].isdigit() or not all(c.isalnum() or c == "_" for c in key):
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            elif len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            env[key] = value
    return env


def service_environment(service):
    """Environment= assignments, then the environment files in order; None: a required file is missing."""
    env = {}
    for value in service.get("Environment", []):
        for item in shlex.split(value):
            key, sep, item_value = item.partition("=")
            if sep:
                env[key] = item_value
    for path, optional in environment_files(service):
        if not os.path.exists(path):
            if optional:
                continue
            return None
        env.update(read_environment_file(path))
    return env


def state_path(name):
    return os.path.join(STATE_DIR, name + ".json")


def read_state(name):
    try:
        with open(state_path(name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"state": "inactive", "pid": 0}


def write_state(name, state):
    os.makedirs(STATE_DIR, exist_ok=True)
    tmp = state_path(name) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, state_path(name))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def is_active(name):
    st = read_state(name)
    if st["state"] == "active" and st.get("type") == "oneshot":
        return True
    return st["state"] == "active" and st["pid"] > 0 and alive(st["pid"])


def active_state(name):
    """What is-active prints: a service whose main process died on its own is "failed" (systemd
    says so for a non-zero exit; the exit status is not known here)."""
    if is_active(name):
        return "active"
    state = read_state(name)["state"].replace("activating", "inactive")
    return "failed" if state == "active" else state


def memory_setting(service, key):
    """Bytes of MemoryMax=/MemoryHigh= (K/M/G/T suffixes, a percentage of RAM); None: infinity."""
    values = service.get(key)
    if not values or values[-1] in ("infinity", ""):
        return None
    value = values[-1]
    if value.endswith("%"):
        with open("/proc/meminfo") as f:
            total = int(f.readline().split()[1]) * 1024
        return int(total * float(value[:-1]) / 100)
    if value[-1].upper() in SIZE_SUFFIXES:
        return int(float(value[:-1]) * SIZE_SUFFIXES[value[-1].upper()])
    return int(value)


def weight_setting(service, key):
    values = service.get(key)
    return int(values[-1]) if values and values[-1].isdigit() else None


def cgroup_layout():
    if os.path.exists(os.path.join(CGROUP_FS, "cgroup.controllers")):
        return "unified"
    if any(os.path.isdir(os.path.join(CGROUP_FS, c)) for c in LEGACY_CONTROLLERS):
        return "legacy"
    return None


def unit_cgroup(name):
    return "/system.slice/" + name


def write_attribute(path, value):
    """Like systemd, a knob the kernel does not offer (or refuses) is skipped, not fatal."""
    try:
        with open(path, "w") as f:
            f.write(str(value))
        return True
    except OSError:
        return False


def prepare_cgroup(name, service):
    """Create the unit's cgroup with its limits applied, as systemd does on this hierarchy; answer
    the cgroup.procs files the service's process joins (empty: no cgroups to use).

    cgroup v2: memory.max, memory.high, cpu.weight, io.weight. cgroup v1 (systemd's legacy
    mapping): MemoryMax -> memory.limit_in_bytes; CPUWeight w -> cpu.shares w*1024/100;
    IOWeight w -> blkio.weight w*500/100 where the kernel has that file; MemoryHigh has no v1
    counterpart and systemd does not apply it there."""
    layout = cgroup_layout()
    if layout is None:
        return []
    memory_max = memory_setting(service, "MemoryMax")
    memory_high = memory_setting(service, "MemoryHigh")
    cpu_weight = weight_setting(service, "CPUWeight")
    io_weight = weight_setting(service, "IOWeight")
    relative = unit_cgroup(name)
    remove_cgroup(name)
    procs = []
    if layout == "unified":
        for parent in (CGROUP_FS, CGROUP_FS + "/system.slice"):
            os.makedirs(parent, exist_ok=True)
            write_attribute(parent + "/cgroup.subtree_control", "+memory +cpu +io")
        path = CGROUP_FS + relative
        os.makedirs(path, exist_ok=True)
        write_attribute(path + "/memory.max", "max" if memory_max is None else memory_max)
        write_attribute(path + "/memory.high", "max" if memory_high is None else memory_high)
        write_attribute(path + "/cpu.weight", cpu_weight or 100)
        write_attribute(path + "/io.weight", "default %d" % (io_weight or 100))
        return [path + "/cgroup.procs"]
    for controller in LEGACY_CONTROLLERS:
        base = os.path.join(CGROUP_FS, controller)
        if not os.path.isdir(base):
            continue
        path = base + relative
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            continue
        if controller == "memory":
            write_attribute(path + "/memory.limit_in_bytes", -1 if memory_max is None else memory_max)
        elif controller == "cpu":
            shares = 1024 if cpu_weight is None else min(max(cpu_weight * 1024 // 100, 2), 262144)
            write_attribute(path + "/cpu.shares", shares)
        elif os.path.exists(path + "/blkio.weight"):
            weight = 500 if io_weight is None else min(max(io_weight * 500 // 100, 10), 1000)
            write_attribute(path + "/blkio.weight", weight)
        procs.append(path + "/cgroup.procs")
    return procs


def remove_cgroup(name):
    """Remove the unit's cgroup once its processes are gone (systemd does when a unit stops)."""
    relative = unit_cgroup(name)
    for base in [CGROUP_FS] + [os.path.join(CGROUP_FS, c) for c in LEGACY_CONTROLLERS]:
        try:
            os.rmdir(base + relative)
        except OSError:
            pass


def load(name):
    path = find_unit(name)
    if path is None:
        sys.stderr.write("Unit %s not found.\n" % name)
        sys.exit(5)
    return path, parse_unit(path, name)


def spawn(service, argv, notify_path, extra_env=None, cgroups=()):
    user = service.get("User", ["root"])[-1]
    group = service.get("Group", [None])[-1]
    pw = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
    umask = int(service.get("UMask", ["0022"])[-1], 8)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            # Into the unit's cgroup and with its OOM score before anything runs, as systemd
            # does before exec (systemd.exec(5), OOMScoreAdjust=).
            for procs in cgroups:
                write_attribute(procs, os.getpid())
            if service.get("OOMScoreAdjust"):
                write_attribute("/proc/self/oom_score_adj", int(service["OOMScoreAdjust"][-1]))
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            output = service.get("StandardOutput", [""])[-1]
            if output.startswith(("file:", "append:")):
                kind, _, target = output.partition(":")
                flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if kind == "append" else os.O_TRUNC)
                out = os.open(target, flags, 0o644)
                os.dup2(out, 1)
                os.dup2(out, 2)
            # Like systemd, the service starts with no other descriptor: the caller's (e.g. a
            # script's lock on fd 9) must not live on in the daemon.
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            os.setgroups([])
            os.setgid(gid)
            os.setuid(pw.pw_uid)
            os.umask(umask)
            os.chdir("/")
            env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
            env.update(extra_env or {})
            if notify_path:
                env["NOTIFY_SOCKET"] = notify_path
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid, pw.pw_uid, gid


def start(name):
    if is_active(name):
        return 0
    _, unit = load(name)
    service = unit.get("Service", {})
    exec_start = service.get("ExecStart", [""])[-1].lstrip("-@+!")
    argv = shlex.split(exec_start)
    kind = service.get("Type", ["simple"])[-1]
    for rd in service.get("RuntimeDirectory", []):
        for d in rd.split():
            path = os.path.join("/run", d)
            os.makedirs(path, exist_ok=True)
            user = service.get("User", ["root"])[-1]
            os.chown(path, pwd.getpwnam(user).pw_uid, grp.getgrnam(service.get("Group", [user])[-1]).gr_gid)
            os.chmod(path, int(service.get("RuntimeDirectoryMode", ["0755"])[-1], 8))
    extra_env = service_environment(service)
    if extra_env is None:
        write_state(name, {"state": "failed", "pid": 0})
        sys.stderr.write("Job for %s failed: an EnvironmentFile= does not exist.\n" % name)
        return 1
    notify = None
    notify_path = None
    if kind == "notify":
        notify_path = "/run/systemd/notify-%s" % name
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        os.chmod(notify_path, 0o666)
        notify.settimeout(0.2)
    cgroups = prepare_cgroup(name, service)
    pid, _, _ = spawn(service, argv, notify_path, extra_env, cgroups)
    placed = {"cgroup": unit_cgroup(name)} if cgroups else {}
    if kind == "oneshot":
        _, status = os.waitpid(pid, 0)
        ok = os.waitstatus_to_exitcode(status) == 0
        write_state(name, {"state": "active" if ok else "failed", "pid": 0, "type": "oneshot"})
        return 0 if ok else 1
    write_state(name, {"state": "activating", "pid": pid})
    deadline = time.monotonic() + START_TIMEOUT_S
    ready = notify is None
    while not ready and time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        try:
            message = notify.recv(4096).decode(errors="replace")
        except socket.timeout:
            continue
        ready = "READY=1" in message.split("\n")
    if notify is not None:
        notify.close()
        os.unlink(notify_path)
    if not ready or not alive(pid):
        write_state(name, {"state": "failed", "pid": 0})
        sys.stderr.write("Job for %s failed.\n" % name)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        return 1
    entered = int(time.monotonic() * 1e6)
    write_state(name, dict({"state": "active", "pid": pid, "entered_us": entered}, **placed))
    return 0


def stop(name):
    st = read_state(name)
    pid = st.get("pid", 0)
    if pid and alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    write_state(name, {"state": "inactive", "pid": 0})
    remove_cgroup(name)
    return 0


def enable(name):
    path, unit = load(name)
    install = unit.get("Install", {})
    for target in " ".join(install.get("WantedBy", [])).split():
        wants = "/etc/systemd/system/%s.wants" % target
        os.makedirs(wants, exist_ok=True)
        link = os.path.join(wants, name)
        if not os.path.islink(link):
            os.symlink(path, link)
            sys.stderr.write("Created symlink %s -> %s.\n" % (link, path))
    for alias in " ".join(install.get("Alias", [])).split():
        link = os.path.join("/etc/systemd/system", alias)
        if not os.path.islink(link):
            os.symlink(path, link)
    return 0


def disable(name):
    load(name)
    base = "/etc/systemd/system"
    for d in os.listdir(base) if os.path.isdir(base) else []:
        link = os.path.join(base, d, name)
        if d.endswith(".wants") and os.path.islink(link):
            os.unlink(link)
            sys.stderr.write("Removed %s.\n" % link)
    return 0


def is_enabled(name):
    load(name)
    for d in os.listdir("/etc/systemd/system") if os.path.isdir("/etc/systemd/system") else []:
        if d.endswith(".wants") and os.path.islink(os.path.join("/etc/systemd/system", d, name)):
            print("enabled")
            return 0
    print("disabled")
    return 1


def main(args):
    quiet = "--quiet" in args or "-q" in args
    value_only = "--value" in args
    props = []
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-p", "--property"):
            props.append(args[i + 1])
            i += 2
            continue
        if a.startswith("--property="):
            props.append(a.split("=", 1)[1])
        elif not a.startswith("-"):
            rest.append(a)
        i += 1
    if not rest:
        sys.stderr.write("usage: systemctl COMMAND [UNIT...]\n")
        return 1
    command, units = rest[0], [unit_name(u) for u in rest[1:]]
    if command == "daemon-reload":
        return 0  # unit files are read on every call
    rc = 0
    for name in units:
        if command == "start":
            rc |= start(name)
        elif command == "stop":
            rc |= stop(name)
        elif command == "restart":
            load(name)
            stop(name)
            rc |= start(name)
        elif command == "enable":
            rc |= enable(name)
        elif command == "disable":
            rc |= disable(name)
        elif command == "is-enabled":
            rc |= is_enabled(name)
        elif command == "is-active":
            active = is_active(name)
            if not quiet:
                print(active_state(name))
            rc |= 0 if active else 3
        elif command == "show":
            st = read_state(name)
            active = is_active(name)
            pid = st["pid"] if active else 0
            path = find_unit(name)
            service = parse_unit(path, name).get("Service", {}) if path else {}
            for prop in props or ["MainPID"]:
                if prop == "MainPID":
                    values = [str(pid)]
                elif prop == "LoadState":
                    values = ["loaded" if path else "not-found"]
                elif prop == "ActiveState":
                    values = [active_state(name)]
                elif prop == "FragmentPath":
                    values = [path or ""]
                elif prop == "EnvironmentFiles":
                    values = [
                        "%s (ignore_errors=%s)" % (file_path, "yes" if optional else "no")
                        for file_path, optional in environment_files(service)
                    ]
                elif prop in ("MemoryMax", "MemoryHigh"):
                    size = memory_setting(service, prop)
                    values = ["infinity" if size is None else str(size)]
                elif prop in ("CPUWeight", "IOWeight"):
                    weight = weight_setting(service, prop)
                    values = ["[not set]" if weight is None else str(weight)]
                elif prop == "OOMScoreAdjust":
                    values = [service.get("OOMScoreAdjust", ["0"])[-1]]
                elif prop == "NRestarts":
                    values = ["0"]  # Restart= is not emulated: nothing restarts by itself
                elif prop == "ActiveEnterTimestampMonotonic":
                    values = [str(st.get("entered_us", 0) if active else 0)]
                elif prop == "ControlGroup":
                    values = [st.get("cgroup", "") if active else ""]
                else:
                    values = [""]
                for value in values:
                    print(value if value_only else "%s=%s" % (prop, value))
        else:
            sys.stderr.write("systemctl (sandbox): unsupported command %s\n" % command)
            return 1
    return rc


sys.exit(main(sys.argv[1:]))
'''


@dataclass(frozen=True)
class CommandResult:
    """What the SSM agent reports for a command: exit code and the two output streams."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False


class SandboxError(RuntimeError):
    """The sandbox could not be started or used."""


class _LoopbackForwarder:
    """Listens on the machine's 127.0.0.1 and relays each connection to 127.0.0.1:port in a netns."""

    def __init__(self, netns_path: str, target_port: int, connect_timeout_s: float = 2.0) -> None:
        self._target_port = target_port
        self._connect_timeout_s = connect_timeout_s
        # One dialing thread that lives in the sandbox's network namespace for its whole life.
        self._dialer = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="sandbox-dialer",
            initializer=_enter_netns,
            initargs=(netns_path,),
        )
        self._relay = LoopbackRelay(
            lambda: self._dialer.submit(self._dial).result(timeout=self._connect_timeout_s + 1),
            name="sandbox-forwarder",
        )
        self.address: tuple[str, int] = self._relay.address

    def _dial(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self._target_port), timeout=self._connect_timeout_s)

    def stop(self) -> None:
        self._relay.stop()
        self._dialer.shutdown(wait=True, cancel_futures=True)


def _enter_netns(netns_path: str) -> None:
    """Move the calling thread (only it) into the network namespace at ``netns_path``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(netns_path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({netns_path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


class SandboxHost:
    """An isolated stand-in for the EC2 instance: runs SSM-style commands as root, loopback only."""

    def __init__(
        self,
        workdir: Path,
        private_ip: str = "10.0.1.23",
        *,
        max_lifetime_s: float = 3600.0,
        outlive_owner: bool = False,
    ) -> None:
        """``outlive_owner``: keep the sandbox after this process ends (``rehearse --keep-running``),
        bounded by ``max_lifetime_s`` only; by default it dies with its owner, however it ends."""
        self.workdir = workdir
        self.private_ip = private_ip
        self.max_lifetime_s = max_lifetime_s
        self.outlive_owner = outlive_owner
        self._unshare: subprocess.Popen[bytes] | None = None
        self._init_pid: int | None = None
        self._forwarders: dict[int, _LoopbackForwarder] = {}
        self._keeper: threading.Thread | None = None
        self._keeper_release = threading.Event()
        self._cgroups = SandboxCgroups()
        # The overlay's upper layer on the machine's disk (see the module's docstring).
        self.disk_dir = workdir.parent / f"{workdir.name}-disk"

    # -- lifecycle ---------------------------------------------------------------------------

    @staticmethod
    def missing_requirements() -> list[str]:
        """What this machine lacks to run a sandbox (empty when it can)."""
        missing = []
        if os.geteuid() != 0:
            missing.append("root (namespaces and mounts)")
        missing.extend(
            tool for tool in ("unshare", "nsenter", "setpriv", "ip", "chroot") if shutil.which(tool) is None
        )
        if not Path("/usr/bin/python3").exists():
            missing.append("/usr/bin/python3 (the sandbox's init and systemctl)")
        return missing

    def start(self, timeout_s: float = 15.0) -> None:
        """Create the namespaces and the copy-on-write root; returns when the sandbox is ready."""
        if self._init_pid is not None:
            return
        missing = self.missing_requirements()
        if missing:
            raise SandboxError("cannot start a sandbox, missing: " + ", ".join(missing))
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.disk_dir, ignore_errors=True)
        self.disk_dir.mkdir(parents=True, mode=0o700)
        self._cgroups = SandboxCgroups.create()
        self._unshare = self._spawn_from_keeper_thread(
            [
                *([] if self.outlive_owner else _DIE_WITH_PARENT),
                "unshare", "--mount", "--net", "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc",
                "--propagation", "private",
                "/bin/sh", "-c", _SETUP_SCRIPT, "sandbox-setup",
                str(self.workdir), self.private_ip, str(self.max_lifetime_s), self._cgroups.mount_argument,
                str(self.disk_dir),
            ]
        )  # fmt: skip
        try:
            self._wait_ready(timeout_s)
            self._init_pid = self._find_init_pid()
            self._install_fake_systemd()
        except BaseException:
            self.stop()
            raise

    def _spawn_from_keeper_thread(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` from a thread that lives until :meth:`stop`: its parent-death signal is tied
        to the forking thread, so a short-lived caller thread would kill the sandbox on its way out."""
        spawned: list[subprocess.Popen[bytes] | BaseException] = []
        ready = threading.Event()
        self._keeper_release.clear()

        def keep() -> None:
            try:
                process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env={**_SANDBOX_ENV, "INIT_PROGRAM": _INIT_PROGRAM}, start_new_session=True,
                )  # fmt: skip
                spawned.append(process)
            except BaseException as error:  # handed to the caller, raised there
                spawned.append(error)
            finally:
                ready.set()
            self._keeper_release.wait()  # bounded by stop(), which every start failure also calls

        self._keeper = threading.Thread(target=keep, name="sandbox-keeper", daemon=True)
        self._keeper.start()
        ready.wait()
        result = spawned[0]
        if isinstance(result, BaseException):
            self._release_keeper()
            raise SandboxError(f"cannot start the sandbox: {result}") from result
        return result

    def _release_keeper(self) -> None:
        self._keeper_release.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
            self._keeper = None

    def _wait_ready(self, timeout_s: float) -> None:
        if self._unshare is None or self._unshare.stdout is None:
            raise SandboxError("the sandbox process is not running")
        with selectors.DefaultSelector() as selector:
            selector.register(self._unshare.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=timeout_s):
                raise SandboxError(f"sandbox not ready within {timeout_s} s")
        line = self._unshare.stdout.readline().decode(errors="replace").strip()
        if line != "SANDBOX_READY":
            self._unshare.wait(timeout=5)
            stderr = self._unshare.stderr.read().decode(errors="replace") if self._unshare.stderr else ""
            raise SandboxError(f"sandbox setup failed: {stderr.strip()[-500:]}")

    def _find_init_pid(self) -> int:
        if self._unshare is None:
            raise SandboxError("the sandbox process is not running")
        children = Path(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children").read_text().split()
        if len(children) != 1:
            raise SandboxError(f"expected one child of unshare, found {children}")
        return int(children[0])

    def _install_fake_systemd(self) -> None:
        systemctl = self.host_path("/usr/bin/systemctl")
        systemctl.unlink(missing_ok=True)  # a copy-up of the machine's binary would be wasted
        systemctl.write_text(_FAKE_SYSTEMCTL)
        systemctl.chmod(0o755)
        # sd_booted()'s test: the script (like systemd tools) checks this directory.
        self.host_path("/run/systemd/system").mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        """Kill everything in the sandbox and release its mounts and forwarders. Idempotent."""
        for forwarder in self._forwarders.values():
            forwarder.stop()
        self._forwarders.clear()
        if self._init_pid is not None:
            # PID 1 of the namespace: the kernel kills every other process in it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._init_pid, signal.SIGKILL)
            self._init_pid = None
        if self._unshare is not None:
            if self._unshare.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._unshare.pid, signal.SIGKILL)
            self._unshare.wait(timeout=10)
            for stream in (self._unshare.stdout, self._unshare.stderr):
                if stream is not None:
                    stream.close()
            self._unshare = None
        self._release_keeper()
        if not self.outlive_owner:
            self._cgroups.remove()
            shutil.rmtree(self.disk_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def init_pid(self) -> int:
        """The machine's pid of the sandbox's first process (``nsenter --target`` takes it)."""
        return self._require_init_pid()

    @property
    def running(self) -> bool:
        return self._init_pid is not None

    def _require_init_pid(self) -> int:
        if self._init_pid is None:
            raise SandboxError("the sandbox is not running")
        return self._init_pid

    # -- what the SSM agent and an operator can do -------------------------------------------

    def run_command(self, commands: list[str], timeout_s: float = 600.0) -> CommandResult:
        """Run ``commands`` like AWS-RunShellScript: joined by newlines into a file, run by ``sh``."""
        init_pid = self._require_init_pid()
        command_id = uuid.uuid4().hex
        inside = f"/var/lib/amazon/ssm/sandbox/document/orchestration/{command_id}/_script.sh"
        script = self.host_path(inside)
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("\n".join(commands) + "\n")
        # Forked by this thread, which waits for it: nsenter dies with it (its command, inside the
        # sandbox's PID namespace, dies with the sandbox).
        process = subprocess.Popen(
            [*_DIE_WITH_PARENT, "nsenter", "-t", str(init_pid), "--mount", "--net", "--pid", "--root", "--wd",
             "sh", inside],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=_SANDBOX_ENV, start_new_session=True,
        )  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # The whole process group: nsenter forks the command into the sandbox's PID namespace.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate(timeout=10)
            return CommandResult(-9, stdout.decode(errors="replace"), stderr.decode(errors="replace"), True)
        return CommandResult(
            process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")
        )

    def host_path(self, path_inside: str) -> Path:
        """The machine's path to a file of the sandbox (through ``/proc/<pid>/root``)."""
        return Path(f"/proc/{self._require_init_pid()}/root") / path_inside.lstrip("/")

    def loopback_address(self, port: int) -> tuple[str, int]:
        """A 127.0.0.1 address on the machine that reaches 127.0.0.1:``port`` inside the sandbox."""
        init_pid = self._require_init_pid()
        if port not in self._forwarders:
            self._forwarders[port] = _LoopbackForwarder(f"/proc/{init_pid}/ns/net", port)
        return self._forwarders[port].address

    def service_main_pid(self, unit: str = "redis-server") -> int | None:
        """The machine's pid of a sandbox service's main process (None when it is not running)."""
        name = unit if "." in unit else f"{unit}.service"
        state_file = self.host_path(f"/run/systemd/sandbox-state/{name}.json")
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return None
        if state.get("state") != "active" or not state.get("pid"):
            return None
        return self.host_pid(int(state["pid"]))

    def cgroup_path(self, controller: str, cgroup: str) -> Path | None:
        """The machine's directory of the sandbox's ``cgroup`` (``/system.slice/<unit>``) on
        ``controller`` (``memory``, ``cpu``, ``blkio``; the unified one on cgroup v2); None when the
        sandbox has no cgroups (the machine offers none it may write)."""
        return self._cgroups.path(controller, cgroup)

    @property
    def cgroup_controllers(self) -> list[str]:
        """The controllers the sandbox applies limits with (empty: none; ``unified``: cgroup v2)."""
        return sorted(self._cgroups.directories)

    def host_pid(self, pid_inside: int) -> int | None:
        """Translate a pid of the sandbox's PID namespace to the machine's pid (None if gone)."""
        ns = os.readlink(f"/proc/{self._require_init_pid()}/ns/pid")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns/pid") != ns:
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("NSpid:") and int(line.split()[-1]) == pid_inside:
                        return int(entry.name)
            except (OSError, ValueError):
                continue
        return None
