"""A private Postfix instance on loopback: Debian packages, configuration, start, queue watching, reload, stop.

Nothing here touches the system instance: ``/etc/postfix/main.cf`` is never read or written. Everything
(configuration, queue, data directory, the maillog written by postlogd) lives in one work directory, and
``postfix -c DIR`` runs the instance. Its ports are a free block chosen at random when it starts
(:func:`reserve_ports`), so several instances (other runs, other programs) can be up at the same time.
With the debconf answer "No configuration" the Debian package creates no ``/etc/postfix/main.cf``, and its
init script exits early without one, so installing does not start a system Postfix (a ``policy-rc.d`` that
denies starts, as in containers, is not needed either).
"""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .pki import Pki

# swaks needs Net::SSLeay for TLS and IO::Socket::INET6 for IPv6 (both only "Recommends"), saslpasswd2 comes
# with sasl2-bin and the PLAIN/LOGIN mechanisms with libsasl2-modules: every package is named explicitly.
PACKAGES = ("postfix", "swaks", "openssl", "sasl2-bin", "libsasl2-modules", "libnet-ssleay-perl",
            "libio-socket-inet6-perl")
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APT_TIMEOUT = 600
START_TIMEOUT = 60
STOP_TIMEOUT = 30
HOSTNAME = "mx.local.test"
LOCAL_USERS = ("alice", "bob", "carol", "postmaster")
SASL_USERS = {"alice@local.test": "secret-alice", "bob@local.test": "secret-bob"}
CACHE_TTL_SECONDS = 3  # how long an idle cached outbound connection stays open (scache and smtp limit)
RELOAD_TIMEOUT = 20  # a reload taking effect and the old smtpd/smtp/tlsproxy processes going away
PORT_ATTEMPTS = 50  # random port blocks tried before giving up
RELOAD_MARK = "]: reload -- version "  # the master's line when a reload takes effect
TLS_LOGGING_DAEMONS = ("smtpd", "smtp", "tlsproxy")
START_ATTEMPTS = 4  # starts tried (each with a fresh block) when a port is taken between the check and the bind


class Unavailable(Exception):
    """Postfix cannot be run here; the message is the one-line reason for the skip (or failure)."""


def _which(command: str) -> str | None:
    return shutil.which(command, path=os.environ.get("PATH", "") + ":" + SBIN_PATH)


def _apt(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=APT_TIMEOUT)


def _installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True,
                          timeout=30)
    return done.stdout.strip() == "install ok installed"


def ensure_packages() -> list[str]:
    """Install the missing Debian packages (non-interactive); return what was installed.

    Raises :class:`Unavailable` when not root, not Debian, or apt cannot install them.
    """
    if not Path("/etc/debian_version").exists() or _which("apt-get") is None or _which("dpkg-query") is None:
        raise Unavailable("not Debian (no apt-get/dpkg-query)")
    missing = [package for package in PACKAGES if not _installed(package)]
    if not missing:
        return []
    if os.geteuid() != 0:
        raise Unavailable(f"not root, cannot install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "PATH": SBIN_PATH}
    subprocess.run(["debconf-set-selections"], input="postfix postfix/main_mailer_type select No configuration\n",
                   env=env, text=True, capture_output=True, timeout=60, check=False)
    install = ["install", "-y", "-q", "--no-install-recommends", *missing]
    try:
        done = _apt(install, env)
        if done.returncode != 0:  # most often: no package lists yet
            _apt(["update", "-q"], env)
            done = _apt(install, env)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"apt-get install {' '.join(missing)} timed out") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"apt-get install {' '.join(missing)} failed: {last}")
    return missing


def postfix_version(config_dir: Path) -> str:
    """mail_version of the installed Postfix, asked through the private instance's configuration."""
    out = subprocess.run([_which("postconf") or "postconf", "-c", str(config_dir), "-h", "mail_version"],
                         capture_output=True, text=True, timeout=30, env={**os.environ, "PATH": SBIN_PATH})
    return out.stdout.strip() or "unknown"


@dataclass(frozen=True)
class Ports:
    """Listener ports relative to one base port (see README.md for the table)."""

    base: int

    mx = property(lambda self: self.base)
    ccert = property(lambda self: self.base + 1)
    submission = property(lambda self: self.base + 2)
    msa = property(lambda self: self.base + 3)
    smtps = property(lambda self: self.base + 4)
    sink_tls = property(lambda self: self.base + 10)
    sink_plain = property(lambda self: self.base + 11)
    sink_selfsigned = property(lambda self: self.base + 12)
    sink_tls12 = property(lambda self: self.base + 13)
    dead = property(lambda self: self.base + 19)

    def listening(self) -> list[int]:
        return [self.mx, self.ccert, self.submission, self.msa, self.smtps,
                self.sink_tls, self.sink_plain, self.sink_selfsigned, self.sink_tls12]

    def needed(self) -> list[int]:
        """Every port of the block: the listeners and the one that must refuse connections."""
        return [*self.listening(), self.dead]


BLOCK = 20  # ports base .. base+19
_reserved: set[int] = set()  # bases handed out in this process and not yet released (concurrent runs)
_reserved_lock = threading.Lock()


def _port_range() -> tuple[int, int]:
    """Where to look for a block: high ports outside the kernel's ephemeral range.

    Outgoing connections (swaks, the Postfix SMTP client) take their source ports from the ephemeral range,
    so a listener there could collide with one of them; below it (or above it) nothing is handed out.
    """
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 15000 >= 2000:
        return 15000, low - BLOCK
    if 65535 - high >= 2000:
        return high + 1, 65535 - BLOCK
    return 20000, 60000 - BLOCK  # no room outside: collisions are still caught by the checks and retries


def reserve_ports(rng: random.Random | None = None) -> Ports:
    """A free block at a random base: every port it needs is bindable on 127.0.0.1 and on ::1 right now.

    Bases already reserved by this process (runs going on in other threads) are skipped; release with
    :func:`release_ports`. Another program can still take a port before Postfix binds it: the start retries.
    """
    rng = rng or random.SystemRandom()
    low, high = _port_range()
    with _reserved_lock:
        for _ in range(PORT_ATTEMPTS):
            base = rng.randrange(low, high)
            if any(abs(base - other) < BLOCK for other in _reserved):
                continue
            ports = Ports(base)
            if all(_port_free(port) for port in ports.needed()):
                _reserved.add(base)
                return ports
    raise Unavailable(f"no free block of {BLOCK} loopback ports found in {PORT_ATTEMPTS} tries ({low}-{high})")


def release_ports(ports: Ports) -> None:
    with _reserved_lock:
        _reserved.discard(ports.base)


# Outbound policy per recipient domain: (transport, next-hop address, sink port attribute).
ROUTES = {
    "tls.example": ("smtp", "127.0.0.1", "sink_tls"),
    "tls6.example": ("smtp", "::1", "sink_tls"),
    "plain.example": ("smtp", "127.0.0.1", "sink_plain"),
    "plain6.example": ("smtp", "::1", "sink_plain"),
    "verify.example": ("smtp-verify", "127.0.0.1", "sink_tls"),
    "tls12.example": ("smtp-tls12", "127.0.0.1", "sink_tls"),
    "aes128.example": ("smtp-aes128", "127.0.0.1", "sink_tls"),
    "anon.example": ("smtp-nocert", "127.0.0.1", "sink_tls"),
    "selfsigned.example": ("smtp", "127.0.0.1", "sink_selfsigned"),
    "badverify.example": ("smtp-verify", "127.0.0.1", "sink_selfsigned"),
    "adh.example": ("smtp", "127.0.0.1", "sink_tls12"),
    "ecdsa.example": ("smtp-noanon", "127.0.0.1", "sink_tls12"),
    "mismatch.example": ("smtp-tls13", "127.0.0.1", "sink_tls12"),
    "encrypt.example": ("smtp-encrypt", "127.0.0.1", "sink_plain"),
    "dead.example": ("smtp", "127.0.0.1", "dead"),
    "cache.example": ("smtp-cache", "127.0.0.1", "sink_tls"),
    "cache6.example": ("smtp-cache", "::1", "sink_tls"),
    "plaincache.example": ("smtp-cache", "127.0.0.1", "sink_plain"),
}


def _listener(address: str, port: int, name: str, *options: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port} inet n - n - - smtpd -o syslog_name={name} {' '.join(options)}".rstrip()


class PostfixInstance:
    """One private Postfix (``postfix -c DIR``) with the driver-facing listeners and the loopback sinks."""

    def __init__(self, workdir: Path, pki: Pki, tls_loglevel: int) -> None:
        self.workdir, self.pki, self.tls_loglevel = workdir, pki, tls_loglevel
        self.ports = Ports(0)  # chosen at start (reserve_ports)
        self.config_dir = workdir / "etc"
        self.queue_dir = workdir / "spool"
        self.maillog = workdir / "maillog"
        self.start_attempts = 0
        self._started = False
        self._reserved: Ports | None = None
        self._guards: list[socket.socket] = []

    # ------------------------------------------------------------ configuration
    def write_config(self) -> None:
        self.config_dir.mkdir(parents=True)
        self.queue_dir.mkdir()
        (self.workdir / "data").mkdir()
        shutil.chown(self.workdir / "data", "postfix", "postfix")
        self.workdir.chmod(0o755)
        (self.config_dir / "main.cf").write_text(self._main_cf())
        (self.config_dir / "local_users").write_text("".join(f"{u}@local.test x\n" for u in LOCAL_USERS))
        (self.config_dir / "cache_destinations").write_text("127.0.0.1 yes\n::1 yes\n")
        self._write_sasl()

    def write_port_config(self) -> None:
        """The files that name ports: rewritten for each block tried."""
        (self.config_dir / "master.cf").write_text(self._master_cf())
        (self.config_dir / "transport").write_text(self._transport())
        self._cool_down()

    def _cool_down(self) -> None:
        """Date the configuration files a minute back.

        Postfix reads a file that changed in the last second or two as "hot" and pauses (300 ms at a time)
        until it has cooled down: 1.5 to 2.5 s for every ``postfix start`` or ``reload`` right after writing it.
        """
        past = time.time() - 60
        for path in self.config_dir.rglob("*"):
            if path.is_file():
                os.utime(path, (past, past))

    def _main_cf(self) -> str:
        c, pki, level = self.config_dir, self.pki, self.tls_loglevel
        return f"""\
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.workdir / 'data'}
mail_owner = postfix
setgid_group = postdrop
myhostname = {HOSTNAME}
mydomain = local.test
myorigin = $mydomain
mydestination = local.test
inet_interfaces = 127.0.0.1, [::1]
inet_protocols = all
mynetworks = 127.0.0.1/32 [::1]/128
smtpd_banner = $myhostname ESMTP
biff = no
append_dot_mydomain = no
readme_directory = no
# no DNS: clients are logged as unknown[ip], next hops are literal loopback addresses
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps = texthash:{c}/local_users
local_transport = discard:local-mailbox
transport_maps = texthash:{c}/transport
maillog_file = {self.maillog}
maillog_file_prefixes = {self.workdir}
smtp_connection_cache_on_demand = no
connection_cache_ttl_limit = {CACHE_TTL_SECONDS}s
smtpd_tls_cert_file = {pki.crt('server')}
smtpd_tls_key_file = {pki.key('server')}
smtpd_tls_CAfile = {pki.crt('ca')}
smtpd_tls_security_level = may
smtpd_tls_loglevel = {level}
smtpd_tls_ask_ccert = no
smtp_tls_security_level = may
smtp_tls_loglevel = {level}
smtp_tls_CAfile = {pki.crt('ca')}
smtp_tls_cert_file = {pki.crt('client')}
smtp_tls_key_file = {pki.key('client')}
cyrus_sasl_config_path = {c / 'sasl'}
"""

    def _master_cf(self) -> str:
        p, pki, c = self.ports, self.pki, self.config_dir
        sink = "-o myhostname=mx.sink.test -o content_filter=discard:sink-accepted"
        auth = ("-o smtpd_sasl_auth_enable=yes -o smtpd_sasl_type=cyrus -o smtpd_sasl_path=smtpd "
                "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination")
        both = ("127.0.0.1", "::1")
        listeners = [
            *(_listener(a, p.mx, "postfix") for a in both),
            *(_listener(a, p.ccert, "postfix/ccert", "-o smtpd_tls_ask_ccert=yes") for a in both),
            *(_listener(a, p.submission, "postfix/submission", "-o smtpd_tls_security_level=encrypt") for a in both),
            *(_listener(a, p.msa, "postfix/msa", auth, "-o smtpd_tls_security_level=encrypt",
                        "-o smtpd_tls_auth_only=yes") for a in both),
            *(_listener(a, p.smtps, "postfix/smtps", auth, "-o smtpd_tls_wrappermode=yes") for a in both),
            *(_listener(a, p.sink_tls, "sink-tls", sink, "-o smtpd_tls_ask_ccert=yes") for a in both),
            *(_listener(a, p.sink_plain, "sink-plain", sink, "-o smtpd_tls_security_level=none") for a in both),
            _listener("127.0.0.1", p.sink_selfsigned, "sink-selfsigned", sink,
                      f"-o smtpd_tls_cert_file={pki.crt('selfsigned')}",
                      f"-o smtpd_tls_key_file={pki.key('selfsigned')}"),
            _listener("127.0.0.1", p.sink_tls12, "sink-tls12", sink, f"-o smtpd_tls_cert_file={pki.crt('ecserver')}",
                      f"-o smtpd_tls_key_file={pki.key('ecserver')}", "-o smtpd_tls_protocols=<=TLSv1.2"),
        ]
        clients = [
            "smtp-verify unix - - n - - smtp -o smtp_tls_security_level=verify -o smtp_tls_verify_cert_match=sink.test",
            "smtp-tls12 unix - - n - - smtp -o smtp_tls_protocols=<=TLSv1.2",
            "smtp-aes128 unix - - n - - smtp -o smtp_tls_protocols=<=TLSv1.2"
            " -o smtp_tls_exclude_ciphers=AES256,CHACHA20,CAMELLIA256,ARIA256",
            "smtp-tls13 unix - - n - - smtp -o smtp_tls_protocols=>=TLSv1.3",
            "smtp-encrypt unix - - n - - smtp -o smtp_tls_security_level=encrypt",
            "smtp-nocert unix - - n - - smtp -o smtp_tls_cert_file= -o smtp_tls_key_file=",
            "smtp-noanon unix - - n - - smtp -o smtp_tls_exclude_ciphers=aNULL",
            # connection caching (conn_use=2...), TLS connections too via tlsproxy
            f"smtp-cache unix - - n - - smtp -o smtp_connection_cache_destinations=texthash:{c}/cache_destinations"
            f" -o smtp_connection_cache_time_limit={CACHE_TTL_SECONDS}s -o smtp_tls_connection_reuse=yes",
        ]
        services = """\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
anvil unix - - n - 1 anvil
tlsproxy unix - - n - 0 tlsproxy
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""
        return "\n".join(["# generated by tests/e2e/postfix.py", *listeners, *clients, services])

    def _transport(self) -> str:
        lines = []
        for domain, (transport, address, port_name) in ROUTES.items():
            lines.append(f"{domain} {transport}:[{address}]:{getattr(self.ports, port_name)}")
        return "\n".join(lines) + "\n"

    def _write_sasl(self) -> None:
        """Cyrus SASL with a private sasldb (auxprop, no saslauthd) for the msa and smtps listeners."""
        sasl_dir, db = self.config_dir / "sasl", self.config_dir / "sasldb2"
        sasl_dir.mkdir()
        (sasl_dir / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {db}\n")
        for user, password in SASL_USERS.items():
            name, realm = user.split("@")
            subprocess.run([_which("saslpasswd2") or "saslpasswd2", "-p", "-c", "-f", str(db), "-u", realm, name],
                           input=password, text=True, check=True, capture_output=True, timeout=30)
        shutil.chown(db, "root", "postfix")
        db.chmod(0o640)

    def route(self, domain: str) -> tuple[str, int]:
        """Next-hop address and port Postfix uses for a recipient domain."""
        _, address, port_name = ROUTES[domain]
        return address, getattr(self.ports, port_name)

    # ------------------------------------------------------------ lifecycle
    def _postfix(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_which("postfix") or "postfix", "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PATH": SBIN_PATH})

    def start(self) -> None:
        """Pick a free port block, start, and wait until every listener is bound.

        The block is chosen at random among free ones (:func:`reserve_ports`); when a port is taken between
        that check and Postfix's bind (``Address already in use``), the instance is stopped and started again
        on a fresh block. Readiness is read from /proc/net (LISTEN sockets), never by connecting: a probe
        connection would be an SMTP session in the log that the truth does not describe.
        """
        for attempt in range(1, START_ATTEMPTS + 1):
            self.start_attempts = attempt
            self.ports = self._reserved = reserve_ports()
            self.write_port_config()
            try:
                self._start_once()
                return
            except _PortTaken as e:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise Unavailable(f"loopback ports taken at start {START_ATTEMPTS} times; last: {e}") from None
                self.maillog.unlink(missing_ok=True)  # the log holds only the instance that ran

    def _start_once(self) -> None:
        self._hold_dead_port()
        self._started = True  # from here on stop() must run, even if start fails half way
        done = self._postfix("start", timeout=START_TIMEOUT)
        if done.returncode != 0:
            fatals = self._fatals()
            taken = [f for f in fatals if "address already in use" in f.lower()]
            if taken:  # "fatal: bind ::1 port N: Address already in use", then "mail system startup failed"
                raise _PortTaken(taken[0])
            raise Unavailable(f"postfix start failed: {(fatals or [done.stderr.strip() or '?'])[-1]}")
        deadline = time.monotonic() + START_TIMEOUT
        while not set(self.ports.listening()) <= _listening_ports():
            if time.monotonic() > deadline:
                raise _PortTaken("postfix started but its listeners are not bound")
            time.sleep(0.05)

    def _hold_dead_port(self) -> None:
        """Keep the "connection refused" port bound (not listening) for the whole run.

        A bound socket that does not listen answers every connection with a reset, and without SO_REUSEADDR
        nobody else can bind the port meanwhile: dead.example stays refused whatever else runs here.
        """
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            guard = socket.socket(family, socket.SOCK_STREAM)
            try:
                guard.bind((address, self.ports.dead))
            except OSError as e:
                guard.close()
                raise _PortTaken(f"port {self.ports.dead} on {address}: {e}") from None
            self._guards.append(guard)

    def _fatals(self) -> list[str]:
        """Postfix reports start-up errors in its own log, not on stderr: its ``fatal:`` messages, in order."""
        try:
            lines = self.maillog.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line.split(": ", 1)[-1] for line in lines if "fatal:" in line]

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """``postfix stop``; if the master survives, kill only the PID from its own pid file. Frees the ports."""
        try:
            self._stop_postfix()
        finally:
            for guard in self._guards:
                guard.close()
            self._guards.clear()
            if self._reserved is not None:
                release_ports(self._reserved)
                self._reserved = None

    def _stop_postfix(self) -> None:
        if not self._started:
            return
        self._started = False
        pid = self.master_pid()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._postfix("stop", timeout=STOP_TIMEOUT)
        if pid is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> PostfixInstance:
        self.write_config()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ TLS log level changes
    def set_tls_loglevel(self, level: int) -> None:
        """Change ``smtpd_tls_loglevel`` and ``smtp_tls_loglevel`` together and make it take effect.

        ``postconf -e`` then ``postfix reload``. On reload the master re-reads its configuration and ends
        its children; new ones read the new main.cf. To keep every session on one side of the change: wait
        until the instance is idle first (no mail in the queue, every smtpd session logged its disconnect),
        then, after the reload, until the master logged ``reload --`` and every smtpd, smtp and tlsproxy
        process of before the reload has exited.
        """
        self.wait_idle()
        old = {pid for pid, name in self.children().items() if name in TLS_LOGGING_DAEMONS}
        reloads = self.maillog_text().count(RELOAD_MARK)
        postconf = [_which("postconf") or "postconf", "-c", str(self.config_dir), "-e",
                    f"smtpd_tls_loglevel = {level}", f"smtp_tls_loglevel = {level}"]
        subprocess.run(postconf, check=True, capture_output=True, timeout=30, env={**os.environ, "PATH": SBIN_PATH})
        self._cool_down()
        done = self._postfix("reload", timeout=RELOAD_TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"postfix reload failed: {done.stderr.strip() or done.stdout.strip()}")
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while self.maillog_text().count(RELOAD_MARK) <= reloads or any(_alive(pid) for pid in old):
            if time.monotonic() > deadline:
                left = sorted(pid for pid in old if _alive(pid))
                raise RuntimeError(f"reload to TLS log level {level} not done after {RELOAD_TIMEOUT} s "
                                   f"(old processes left: {left})")
            time.sleep(0.05)
        self.tls_loglevel = level

    def wait_idle(self, timeout: float = RELOAD_TIMEOUT) -> None:
        """Until no mail waits for delivery and every smtpd ``connect from`` has its ``disconnect from``."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.maillog_text()
            if not self.busy() and text.count("]: connect from ") == text.count("]: disconnect from "):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"instance not idle after {timeout} s")
            time.sleep(0.05)

    def maillog_text(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def children(self) -> dict[int, str]:
        """The master's child processes: pid -> command name."""
        master = self.master_pid()
        found: dict[int, str] = {}
        if master is None:
            return found
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            if int(rest[1]) == master:
                found[int(proc.name)] = name
        return found

    # ------------------------------------------------------------ queue observations
    def queue_state(self, queue_id: str) -> str:
        """"pending" (incoming/active), "deferred", or "done" (delivered and removed).

        Read from the queue directory, not from the log: this is what the driver observes.
        """
        q = self.queue_dir
        if (q / "incoming" / queue_id).exists() or (q / "active" / queue_id).exists():
            return "pending"
        if any(q.glob(f"deferred/*/{queue_id}")) or (q / "deferred" / queue_id).exists():
            return "deferred"
        return "done"

    def defer_reasons(self, queue_id: str) -> str:
        """The per-recipient reasons Postfix keeps for a deferred message (its defer log)."""
        files = [*self.queue_dir.glob(f"defer/*/{queue_id}"), self.queue_dir / "defer" / queue_id]
        return "".join(f.read_text(errors="replace") for f in files if f.exists())

    def busy(self) -> bool:
        """Whether mail is still waiting for a delivery attempt."""
        return any(any((self.queue_dir / d).rglob("*")) for d in ("maildrop", "incoming", "active"))


class _PortTaken(Exception):
    """A port of the block was taken after it was checked: start again on another block."""


def _port_free(port: int) -> bool:
    """Bindable on 127.0.0.1 and on ::1, without SO_REUSEADDR (so a port in any use, even TIME_WAIT, is busy)."""
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, port))
            except OSError:
                return False
    return True


def _listening_ports() -> set[int]:
    """TCP ports in LISTEN state (IPv4 and IPv6), from /proc/net."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
