#!/usr/bin/env bash
# A private Dovecot IMAP server for the tests and benchmarks (no systemd, loopback only).
#
#   .ci/dovecot.sh install                 install dovecot-imapd if `dovecot` is missing,
#                                          without ever letting the system's own instance run
#   .ci/dovecot.sh start DIR PORT [TLSPORT] write DIR/dovecot.conf, start it, print the port(s);
#                                          with TLSPORT: a self-signed certificate in DIR,
#                                          implicit TLS on TLSPORT and STARTTLS on PORT
#   .ci/dovecot.sh stop DIR                stop the instance started in DIR
#
# Users (passwd-file DIR/users): test / pass and other / otherpass, mail in
# DIR/home/USER/Maildir. Every command is idempotent.
set -euo pipefail

DOVECOT_BIN="$(command -v dovecot || true)"
[[ -z "$DOVECOT_BIN" && -x /usr/sbin/dovecot ]] && DOVECOT_BIN=/usr/sbin/dovecot

die() { echo "dovecot.sh: $*" >&2; exit 1; }

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}

cmd_install() {
    if [[ -n "$DOVECOT_BIN" ]]; then
        echo "dovecot already installed: $("$DOVECOT_BIN" --version)"
        return 0
    fi
    # Debian's maintainer scripts start the packaged service (port 143 on every interface)
    # unless policy-rc.d says no; exit code 101 = "action forbidden". Keep one that exists.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dovecot-imapd
    [[ "$added_policy" == 1 ]] && as_root rm -f "$policy"
    # Belt and braces: whatever the init system did, the packaged instance must not run.
    if [[ -f /run/dovecot/master.pid ]]; then
        as_root kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
    fi
    as_root systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    command -v dovecot >/dev/null || [[ -x /usr/sbin/dovecot ]] || die "install failed"
    echo "dovecot installed: $(/usr/sbin/dovecot --version)"
}

cmd_start() {
    local dir="${1:?usage: start DIR PORT [TLSPORT]}" port="${2:?usage: start DIR PORT [TLSPORT]}"
    local tls_port="${3:-}"
    [[ -n "$DOVECOT_BIN" ]] || die "dovecot is not installed (run: $0 install)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [[ -f "$dir/run/master.pid" ]] && kill -0 "$(cat "$dir/run/master.pid")" 2>/dev/null; then
        echo "$port${tls_port:+ $tls_port}"
        return 0
    fi

    # As root, mail is owned by the `dovecot` user and login runs as `dovenull` (Dovecot
    # refuses root for both). Unprivileged, everything runs as the current user.
    local mail_user login_user internal_user internal_group
    if [[ "$(id -u)" == 0 ]]; then
        mail_user=dovecot login_user=dovenull internal_user=dovecot internal_group=dovecot
    else
        mail_user="$(id -un)" login_user="$(id -un)" internal_user="$(id -un)"
        internal_group="$(id -gn)"
    fi
    local uid gid
    uid="$(id -u "$mail_user")" gid="$(id -g "$mail_user")"

    chmod 755 "$dir"
    mkdir -p "$dir/run" "$dir/state" "$dir/home/test" "$dir/home/other"
    cat >"$dir/users" <<EOF
test:{PLAIN}pass:$uid:$gid::$dir/home/test::nodelay=y
other:{PLAIN}otherpass:$uid:$gid::$dir/home/other::nodelay=y
EOF

    local ssl_block="ssl = no"
    local imaps_port=0
    if [[ -n "$tls_port" ]]; then
        if [[ ! -f "$dir/cert.pem" ]]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
                -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
                -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 \
                || die "openssl could not make a test certificate"
        fi
        ssl_block="ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem"
        imaps_port="$tls_port"
    fi

    cat >"$dir/dovecot.conf" <<EOF
# Written by .ci/dovecot.sh: a private test instance, loopback only.
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
instance_name = aicmo-test-$port
protocols = imap
listen = 127.0.0.1
$ssl_block
disable_plaintext_auth = no
auth_mechanisms = plain login
# Failed logins answer at once: no first-failure delay (auth_failure_delay, the passdb's
# nodelay field) and no per-IP penalty (see service anvil below).
auth_failure_delay = 0
default_login_user = $login_user
default_internal_user = $internal_user
default_internal_group = $internal_group
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
    ssl = yes
  }
}
service anvil {
  chroot =
  # No per-IP auth penalty (up to 15 s after repeated failures, which tests provoke).
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# No statistics: processes would otherwise wait for the stats service at start and stop.
stats_writer_socket_path =
# doveadm (kick, mailbox update, expunge) talks to this instance through these sockets.
service doveadm {
  unix_listener doveadm-server {
    mode = 0666
  }
}
EOF
    chown -R "$mail_user" "$dir/home" "$dir/state" 2>/dev/null || true
    # A 0700 parent (e.g. pytest's tmp_path) would lock the mail user out of its home.
    if [[ "$(id -u)" == 0 ]] && command -v runuser >/dev/null \
        && ! runuser -u "$mail_user" -- test -w "$dir/home/test"; then
        die "user $mail_user cannot write $dir/home/test: pick a DIR whose parents it can enter"
    fi
    # Detached from our stdio: whoever reads this script's output must not wait for Dovecot.
    "$DOVECOT_BIN" -c "$dir/dovecot.conf" </dev/null >/dev/null 2>>"$dir/dovecot.log" || die "dovecot did not start; see $dir/dovecot.log"

    # The master forks and returns before the listener may accept; wait (bounded) for it.
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port${tls_port:+ $tls_port}"
            return 0
        fi
        sleep 0.05
    done
    die "dovecot did not listen on 127.0.0.1:$port; see $dir/dovecot.log"
}

cmd_stop() {
    local dir="${1:?usage: stop DIR}"
    local pidfile="$dir/run/master.pid"
    [[ -f "$pidfile" ]] || return 0
    local pid
    pid="$(cat "$pidfile")"
    # SIGTERM is Dovecot's clean shutdown; its master lingers a second or two after its
    # children exit. Give it 15 s, then kill this instance's master for good.
    if kill "$pid" 2>/dev/null; then
        local i
        for i in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

case "${1:-}" in
    install) cmd_install ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    *) die "usage: $0 install | start DIR PORT [TLSPORT] | stop DIR" ;;
esac
