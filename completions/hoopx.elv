
use builtin;
use str;

set edit:completion:arg-completer[hoopx] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'hoopx'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'hoopx'= {
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand exec 'Run a command through the gateway: `hoopx exec -- psql -h db`'
            cand gateway 'Run or manage a gateway'
            cand sessions 'List and inspect recorded sessions'
            cand mcp 'Serve hoopx to AI agents as an MCP server over stdio (tools: exec, sessions, replay_text)'
            cand review 'Decide the commands that wait for approval: list, show, approve, reject, revoke'
            cand replay 'Play a recorded session (or watch a live one), or export it as text, asciicast or JSON'
            cand verify 'Prove a recording unaltered (hash chain, signatures, signed close, ledger), or the whole store against its ledger with --all, or an evidence export offline'
            cand login 'Log in to a gateway''s identity provider (device flow; --browser; --client-credentials)'
            cand logout 'Forget the login for a gateway and revoke it at the identity provider'
            cand status 'Show who you are at the gateway: identity, groups, token source and expiry'
            cand completion 'Print the shell completion script: `hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx`'
            cand man 'Print a man page (roff): `hoopx man exec | man -l -`'
            cand generate 'Regenerate shell completions and man pages (for packagers and the repository)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;exec'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --target 'Target to open the session on; by default the one target that runs the command'
            cand --review 'Run under this approved review (single-use): of this very command line, or of one input line of it, which it then releases once'
            cand --approval-timeout 'Give up waiting for a review after this long (exit 75), e.g. 10m. Default: wait until it is decided or expires'
            cand -o '`json`: NDJSON events on stdout (session, stdout, stderr, approval_pending, approved, denied, exit) instead of the tool''s raw output; implies --no-tty'
            cand --output '`json`: NDJSON events on stdout (session, stdout, stderr, approval_pending, approved, denied, exit) instead of the tool''s raw output; implies --no-tty'
            cand --capture-limit 'Bytes of stdout and of stderr kept by --capture; the rest is dropped and flagged'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand --tty 'Run the command under a pseudo-terminal even when stdin/stdout are not terminals'
            cand --no-tty 'Run the command under pipes (stdout and stderr kept apart) even on a terminal'
            cand --no-wait 'Do not wait for a review: exit 75 at once with the review id (a review of an input line stays pending; run again with the same input and --review ID once approved)'
            cand --capture 'For tool calls: run under pipes and print one JSON object at the end (session_id, exit_code, masked stdout and stderr, truncation flags, notices) instead of the output'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;gateway'= {
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand serve 'Serve the HTTP API and session streams'
            cand check 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about'
            cand prune 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;gateway;serve'= {
            cand --config 'The TOML config (targets and rules); without one, the default policy'
            cand --listen 'Address to listen on'
            cand --store 'Store URL: sqlite://PATH (default: gateway.db in the XDG data dir) or postgres://…'
            cand --signing-key 'The Ed25519 key that signs recordings (PKCS#8 PEM, mode 0600), created if missing. Default: gateway-signing.pem in the XDG data dir. Give replicas the same key'
            cand --drain-grace 'On SIGTERM or Ctrl-C, how long running sessions may go on (new ones are refused at once and /v1/ready answers 503); those still running then end as aborted. A second SIGTERM or Ctrl-C ends them at once'
            cand --lease 'How long this replica''s lease in the store lasts unless renewed (tests shorten it)'
            cand --log-format 'The log on stderr: `text` (one line per event) or `json` (one object per line). The filter comes from HOOPX_LOG, else RUST_LOG, else `info`'
            cand --metrics-listen 'Also serve Prometheus metrics (`/metrics`) on this address, e.g. 127.0.0.1:9433 (they are always at /metrics on --listen too)'
            cand --tls-cert 'Serve HTTPS with this certificate chain (PEM); reloaded on SIGHUP and when the file changes'
            cand --tls-key 'The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand --dev 'Development mode: accept one bearer token, HOOPX_DEV_TOKEN or a generated one (beside the OpenID tokens of an [auth] table, if the config has one)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;gateway;check'= {
            cand --config 'The TOML config file'
            cand -o '`json`: one object (`ok`, counts, targets; or `error` with file, line, column)'
            cand --output '`json`: one object (`ok`, counts, targets; or `error` with file, line, column)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand --dev 'Check for `serve --dev`: a config without an [auth] table is then fine'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;gateway;prune'= {
            cand --older-than 'Prune sessions that ended longer ago than this, e.g. 90d (default: the config''s [store] retention)'
            cand --config 'The gateway''s TOML config, for its [store] retention'
            cand --store 'Store URL, as for `gateway serve` (default: gateway.db in the XDG data dir)'
            cand --signing-key 'The gateway''s signing key, which signs the ledger''s prune entries (default: gateway-signing.pem in the XDG data dir). It must exist'
            cand -o '`json`: one object (`pruned`: the sessions, `dry_run`, `older_than_ms`)'
            cand --output '`json`: one object (`pruned`: the sessions, `dry_run`, `older_than_ms`)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand --dry-run 'List what would be pruned; change nothing'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;gateway;help'= {
            cand serve 'Serve the HTTP API and session streams'
            cand check 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about'
            cand prune 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;gateway;help;serve'= {
        }
        &'hoopx;gateway;help;check'= {
        }
        &'hoopx;gateway;help;prune'= {
        }
        &'hoopx;gateway;help;help'= {
        }
        &'hoopx;sessions'= {
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand list 'List sessions, newest first'
            cand show 'Show one session, with the verification of its recording'
            cand export 'Write sessions, their reviews, the ledger covering them and the gateway''s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;sessions;list'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --user 'Only sessions of this identity'
            cand --target 'Only sessions on this target'
            cand --since 'Only sessions started within this long, e.g. 90m, 24h, 7d'
            cand --status 'Only sessions in this state: open, running, exited, aborted or denied'
            cand --limit 'How many sessions to show at most'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;sessions;show'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;sessions;export'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --since 'Only sessions started within this long, e.g. 24h, 30d'
            cand --user 'Only sessions of this identity'
            cand --target 'Only sessions on this target'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;sessions;help'= {
            cand list 'List sessions, newest first'
            cand show 'Show one session, with the verification of its recording'
            cand export 'Write sessions, their reviews, the ledger covering them and the gateway''s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;sessions;help;list'= {
        }
        &'hoopx;sessions;help;show'= {
        }
        &'hoopx;sessions;help;export'= {
        }
        &'hoopx;sessions;help;help'= {
        }
        &'hoopx;mcp'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;review'= {
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand list 'List reviews, newest first'
            cand show 'Show one review: the exact command, who asked, and every decision'
            cand approve 'Approve a pending review (you cannot approve your own request)'
            cand reject 'Reject a pending review; the command or line never runs'
            cand revoke 'Withdraw a pending request or an approval not used yet'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;review;list'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --status 'Only reviews in this state'
            cand --limit 'How many reviews to show at most'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;review;show'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;review;approve'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --reason 'Why, recorded with the decision'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;review;reject'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --reason 'Why, recorded with the decision and shown to the requester'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;review;revoke'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --reason 'reason'
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;review;help'= {
            cand list 'List reviews, newest first'
            cand show 'Show one review: the exact command, who asked, and every decision'
            cand approve 'Approve a pending review (you cannot approve your own request)'
            cand reject 'Reject a pending review; the command or line never runs'
            cand revoke 'Withdraw a pending request or an approval not used yet'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;review;help;list'= {
        }
        &'hoopx;review;help;show'= {
        }
        &'hoopx;review;help;approve'= {
        }
        &'hoopx;review;help;reject'= {
        }
        &'hoopx;review;help;revoke'= {
        }
        &'hoopx;review;help;help'= {
        }
        &'hoopx;replay'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --format 'What to write: play it (pty), or export it (text, cast, cast3, json, sql, requests)'
            cand --speed 'Playback speed factor, e.g. 2 or 0.5'
            cand --idle-limit 'Shorten pauses longer than this many seconds'
            cand --from 'Start here: a time (90, 1:30, 1m30s, 500ms) or a marker''s text (e.g. denied)'
            cand --to 'Stop here: a time or a marker''s text'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand --follow 'Watch a running session live: catch up from its start, then follow until it ends'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;verify'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand --since 'With --all: check only sessions started within this long, e.g. 24h, 30d (the ledger itself is always checked whole)'
            cand --head 'With --all: a ledger head kept from an earlier run (`SIZE:HASH`, as printed); the ledger must still begin with exactly those entries'
            cand --key 'The public key to trust: base64 of the 32 key bytes, a PEM block, or a file holding either (the gateway serves its keys at /v1/keys). Without it: the gateway''s key for a session; for a file, its key only if it is the configured gateway''s or one of this machine''s gateways'''
            cand -o '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --output '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand --all 'Check the gateway''s whole session ledger against the sessions in its store: every session deleted, cut short, re-opened or inserted is reported'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;login'= {
            cand --gateway 'Gateway URL (default: HOOPX_GATEWAY, then the client config''s `gateway`)'
            cand -o '`json`: NDJSON on stdout — a `device_code` event (address and code to relay to a person) when the device flow starts, then a `logged_in` event (docs/JSON.md)'
            cand --output '`json`: NDJSON on stdout — a `device_code` event (address and code to relay to a person) when the device flow starts, then a `logged_in` event (docs/JSON.md)'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand --browser 'Log in in a browser on this machine (authorization code with PKCE and a 127.0.0.1 redirect) instead of the device flow'
            cand --no-open 'With --browser: print the address instead of opening a browser'
            cand --client-credentials 'Log in as a machine with HOOPX_CLIENT_ID and HOOPX_CLIENT_SECRET'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;logout'= {
            cand --gateway 'Gateway URL (default: HOOPX_GATEWAY, then the client config''s `gateway`)'
            cand -o '`json`: one object, `{"gateway", "logged_out", "revoked"}`'
            cand --output '`json`: one object, `{"gateway", "logged_out", "revoked"}`'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;status'= {
            cand --gateway 'Gateway URL; without one, hoopx runs an embedded gateway in-process'
            cand --token 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;completion'= {
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;man'= {
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;generate'= {
            cand --out 'Directory that receives `completions/` and `man/`'
            cand --color 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopx;help'= {
            cand exec 'Run a command through the gateway: `hoopx exec -- psql -h db`'
            cand gateway 'Run or manage a gateway'
            cand sessions 'List and inspect recorded sessions'
            cand mcp 'Serve hoopx to AI agents as an MCP server over stdio (tools: exec, sessions, replay_text)'
            cand review 'Decide the commands that wait for approval: list, show, approve, reject, revoke'
            cand replay 'Play a recorded session (or watch a live one), or export it as text, asciicast or JSON'
            cand verify 'Prove a recording unaltered (hash chain, signatures, signed close, ledger), or the whole store against its ledger with --all, or an evidence export offline'
            cand login 'Log in to a gateway''s identity provider (device flow; --browser; --client-credentials)'
            cand logout 'Forget the login for a gateway and revoke it at the identity provider'
            cand status 'Show who you are at the gateway: identity, groups, token source and expiry'
            cand completion 'Print the shell completion script: `hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx`'
            cand man 'Print a man page (roff): `hoopx man exec | man -l -`'
            cand generate 'Regenerate shell completions and man pages (for packagers and the repository)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopx;help;exec'= {
        }
        &'hoopx;help;gateway'= {
            cand serve 'Serve the HTTP API and session streams'
            cand check 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about'
            cand prune 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence'
        }
        &'hoopx;help;gateway;serve'= {
        }
        &'hoopx;help;gateway;check'= {
        }
        &'hoopx;help;gateway;prune'= {
        }
        &'hoopx;help;sessions'= {
            cand list 'List sessions, newest first'
            cand show 'Show one session, with the verification of its recording'
            cand export 'Write sessions, their reviews, the ledger covering them and the gateway''s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline'
        }
        &'hoopx;help;sessions;list'= {
        }
        &'hoopx;help;sessions;show'= {
        }
        &'hoopx;help;sessions;export'= {
        }
        &'hoopx;help;mcp'= {
        }
        &'hoopx;help;review'= {
            cand list 'List reviews, newest first'
            cand show 'Show one review: the exact command, who asked, and every decision'
            cand approve 'Approve a pending review (you cannot approve your own request)'
            cand reject 'Reject a pending review; the command or line never runs'
            cand revoke 'Withdraw a pending request or an approval not used yet'
        }
        &'hoopx;help;review;list'= {
        }
        &'hoopx;help;review;show'= {
        }
        &'hoopx;help;review;approve'= {
        }
        &'hoopx;help;review;reject'= {
        }
        &'hoopx;help;review;revoke'= {
        }
        &'hoopx;help;replay'= {
        }
        &'hoopx;help;verify'= {
        }
        &'hoopx;help;login'= {
        }
        &'hoopx;help;logout'= {
        }
        &'hoopx;help;status'= {
        }
        &'hoopx;help;completion'= {
        }
        &'hoopx;help;man'= {
        }
        &'hoopx;help;generate'= {
        }
        &'hoopx;help;help'= {
        }
    ]
    $completions[$command]
}
