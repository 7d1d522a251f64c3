# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hoopx_global_optspecs
    string join \n color= h/help V/version
end

function __fish_hoopx_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hoopx_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hoopx_using_subcommand
    set -l cmd (__fish_hoopx_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hoopx -n "__fish_hoopx_needs_command" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_needs_command" -s V -l version -d 'Print version'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "exec" -d 'Run a command through the gateway: `hoopx exec -- psql -h db`'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "gateway" -d 'Run or manage a gateway'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "sessions" -d 'List and inspect recorded sessions'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "mcp" -d 'Serve hoopx to AI agents as an MCP server over stdio (tools: exec, sessions, replay_text)'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "review" -d 'Decide the commands that wait for approval: list, show, approve, reject, revoke'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "replay" -d 'Play a recorded session (or watch a live one), or export it as text, asciicast or JSON'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "verify" -d 'Prove a recording unaltered (hash chain, signatures, signed close, ledger), or the whole store against its ledger with --all, or an evidence export offline'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "login" -d 'Log in to a gateway\'s identity provider (device flow; --browser; --client-credentials)'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "logout" -d 'Forget the login for a gateway and revoke it at the identity provider'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "status" -d 'Show who you are at the gateway: identity, groups, token source and expiry'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "completion" -d 'Print the shell completion script: `hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx`'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "man" -d 'Print a man page (roff): `hoopx man exec | man -l -`'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "generate" -d 'Regenerate shell completions and man pages (for packagers and the repository)'
complete -c hoopx -n "__fish_hoopx_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l target -d 'Target to open the session on; by default the one target that runs the command' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l review -d 'Run under this approved review (single-use): of this very command line, or of one input line of it, which it then releases once' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l approval-timeout -d 'Give up waiting for a review after this long (exit 75), e.g. 10m. Default: wait until it is decided or expires' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -s o -l output -d '`json`: NDJSON events on stdout (session, stdout, stderr, approval_pending, approved, denied, exit) instead of the tool\'s raw output; implies --no-tty' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l capture-limit -d 'Bytes of stdout and of stderr kept by --capture; the rest is dropped and flagged' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l tty -d 'Run the command under a pseudo-terminal even when stdin/stdout are not terminals'
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l no-tty -d 'Run the command under pipes (stdout and stderr kept apart) even on a terminal'
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l no-wait -d 'Do not wait for a review: exit 75 at once with the review id (a review of an input line stays pending; run again with the same input and --review ID once approved)'
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -l capture -d 'For tool calls: run under pipes and print one JSON object at the end (session_id, exit_code, masked stdout and stderr, truncation flags, notices) instead of the output'
complete -c hoopx -n "__fish_hoopx_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and not __fish_seen_subcommand_from serve check prune help" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and not __fish_seen_subcommand_from serve check prune help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and not __fish_seen_subcommand_from serve check prune help" -f -a "serve" -d 'Serve the HTTP API and session streams'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and not __fish_seen_subcommand_from serve check prune help" -f -a "check" -d 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and not __fish_seen_subcommand_from serve check prune help" -f -a "prune" -d 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and not __fish_seen_subcommand_from serve check prune help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l config -d 'The TOML config (targets and rules); without one, the default policy' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l listen -d 'Address to listen on' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l store -d 'Store URL: sqlite://PATH (default: gateway.db in the XDG data dir) or postgres://…' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l signing-key -d 'The Ed25519 key that signs recordings (PKCS#8 PEM, mode 0600), created if missing. Default: gateway-signing.pem in the XDG data dir. Give replicas the same key' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l drain-grace -d 'On SIGTERM or Ctrl-C, how long running sessions may go on (new ones are refused at once and /v1/ready answers 503); those still running then end as aborted. A second SIGTERM or Ctrl-C ends them at once' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l lease -d 'How long this replica\'s lease in the store lasts unless renewed (tests shorten it)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l log-format -d 'The log on stderr: `text` (one line per event) or `json` (one object per line). The filter comes from HOOPX_LOG, else RUST_LOG, else `info`' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l metrics-listen -d 'Also serve Prometheus metrics (`/metrics`) on this address, e.g. 127.0.0.1:9433 (they are always at /metrics on --listen too)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM); reloaded on SIGHUP and when the file changes' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l tls-key -d 'The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -l dev -d 'Development mode: accept one bearer token, HOOPX_DEV_TOKEN or a generated one (beside the OpenID tokens of an [auth] table, if the config has one)'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from check" -l config -d 'The TOML config file' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from check" -s o -l output -d '`json`: one object (`ok`, counts, targets; or `error` with file, line, column)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from check" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from check" -l dev -d 'Check for `serve --dev`: a config without an [auth] table is then fine'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -l older-than -d 'Prune sessions that ended longer ago than this, e.g. 90d (default: the config\'s [store] retention)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -l config -d 'The gateway\'s TOML config, for its [store] retention' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -l store -d 'Store URL, as for `gateway serve` (default: gateway.db in the XDG data dir)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -l signing-key -d 'The gateway\'s signing key, which signs the ledger\'s prune entries (default: gateway-signing.pem in the XDG data dir). It must exist' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -s o -l output -d '`json`: one object (`pruned`: the sessions, `dry_run`, `older_than_ms`)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -l dry-run -d 'List what would be pruned; change nothing'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from help" -f -a "serve" -d 'Serve the HTTP API and session streams'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from help" -f -a "prune" -d 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence'
complete -c hoopx -n "__fish_hoopx_using_subcommand gateway; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and not __fish_seen_subcommand_from list show export help" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and not __fish_seen_subcommand_from list show export help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and not __fish_seen_subcommand_from list show export help" -f -a "list" -d 'List sessions, newest first'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and not __fish_seen_subcommand_from list show export help" -f -a "show" -d 'Show one session, with the verification of its recording'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and not __fish_seen_subcommand_from list show export help" -f -a "export" -d 'Write sessions, their reviews, the ledger covering them and the gateway\'s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and not __fish_seen_subcommand_from list show export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l user -d 'Only sessions of this identity' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l target -d 'Only sessions on this target' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l since -d 'Only sessions started within this long, e.g. 90m, 24h, 7d' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l status -d 'Only sessions in this state: open, running, exited, aborted or denied' -r -f -a "open\t''
running\t''
exited\t''
aborted\t''
denied\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l limit -d 'How many sessions to show at most' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from show" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from show" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from show" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from show" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -l since -d 'Only sessions started within this long, e.g. 24h, 30d' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -l user -d 'Only sessions of this identity' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -l target -d 'Only sessions on this target' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "list" -d 'List sessions, newest first'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one session, with the verification of its recording'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write sessions, their reviews, the ledger covering them and the gateway\'s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline'
complete -c hoopx -n "__fish_hoopx_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand mcp" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand mcp" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand mcp" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand mcp" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -f -a "list" -d 'List reviews, newest first'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -f -a "show" -d 'Show one review: the exact command, who asked, and every decision'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -f -a "approve" -d 'Approve a pending review (you cannot approve your own request)'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -f -a "reject" -d 'Reject a pending review; the command or line never runs'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -f -a "revoke" -d 'Withdraw a pending request or an approval not used yet'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and not __fish_seen_subcommand_from list show approve reject revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from list" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from list" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from list" -l status -d 'Only reviews in this state' -r -f -a "pending\t''
approved\t''
executed\t''
rejected\t''
expired\t''
revoked\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from list" -l limit -d 'How many reviews to show at most' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from list" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from list" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from show" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from show" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from show" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from show" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from approve" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from approve" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from approve" -l reason -d 'Why, recorded with the decision' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from approve" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from approve" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from approve" -s y -l yes -d 'Do not ask for confirmation'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from approve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from reject" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from reject" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from reject" -l reason -d 'Why, recorded with the decision and shown to the requester' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from reject" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from reject" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from reject" -s y -l yes -d 'Do not ask for confirmation'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from reject" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from revoke" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from revoke" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from revoke" -l reason -r
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from revoke" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from revoke" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from help" -f -a "list" -d 'List reviews, newest first'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one review: the exact command, who asked, and every decision'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from help" -f -a "approve" -d 'Approve a pending review (you cannot approve your own request)'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from help" -f -a "reject" -d 'Reject a pending review; the command or line never runs'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Withdraw a pending request or an approval not used yet'
complete -c hoopx -n "__fish_hoopx_using_subcommand review; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l format -d 'What to write: play it (pty), or export it (text, cast, cast3, json, sql, requests)' -r -f -a "pty\t'Play on the terminal with the original timing'
text\t'Everything the screen showed, without escape codes, as a transcript (greppable): lines that scrolled off or were cleared included'
screen\t'The final screen only, as the terminal showed it when the session ended'
cast\t'asciicast v2 (asciinema 2.x), with what `hoopx verify` needs in the header'
cast3\t'asciicast v3 (asciinema 3.x), with what `hoopx verify` needs in the header'
json\t'The events as JSON lines: hoopx\'s own export, verifiable'
sql\t'The statement log of a postgres session: each statement as the gateway saw it on its own connection to the server, with its outcome (masked)'
requests\t'The request log of a kubernetes session: each API request as the gateway resolved and decided it, with the API server\'s status'"
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l speed -d 'Playback speed factor, e.g. 2 or 0.5' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l idle-limit -d 'Shorten pauses longer than this many seconds' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l from -d 'Start here: a time (90, 1:30, 1m30s, 500ms) or a marker\'s text (e.g. denied)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l to -d 'Stop here: a time or a marker\'s text' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -l follow -d 'Watch a running session live: catch up from its start, then follow until it ends'
complete -c hoopx -n "__fish_hoopx_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -l since -d 'With --all: check only sessions started within this long, e.g. 24h, 30d (the ledger itself is always checked whole)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -l head -d 'With --all: a ledger head kept from an earlier run (`SIZE:HASH`, as printed); the ledger must still begin with exactly those entries' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -l key -d 'The public key to trust: base64 of the 32 key bytes, a PEM block, or a file holding either (the gateway serves its keys at /v1/keys). Without it: the gateway\'s key for a session; for a file, its key only if it is the configured gateway\'s or one of this machine\'s gateways\'' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -s o -l output -d '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -l all -d 'Check the gateway\'s whole session ledger against the sessions in its store: every session deleted, cut short, re-opened or inserted is reported'
complete -c hoopx -n "__fish_hoopx_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand login" -l gateway -d 'Gateway URL (default: HOOPX_GATEWAY, then the client config\'s `gateway`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand login" -s o -l output -d '`json`: NDJSON on stdout — a `device_code` event (address and code to relay to a person) when the device flow starts, then a `logged_in` event (docs/JSON.md)' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand login" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand login" -l browser -d 'Log in in a browser on this machine (authorization code with PKCE and a 127.0.0.1 redirect) instead of the device flow'
complete -c hoopx -n "__fish_hoopx_using_subcommand login" -l no-open -d 'With --browser: print the address instead of opening a browser'
complete -c hoopx -n "__fish_hoopx_using_subcommand login" -l client-credentials -d 'Log in as a machine with HOOPX_CLIENT_ID and HOOPX_CLIENT_SECRET'
complete -c hoopx -n "__fish_hoopx_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand logout" -l gateway -d 'Gateway URL (default: HOOPX_GATEWAY, then the client config\'s `gateway`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand logout" -s o -l output -d '`json`: one object, `{"gateway", "logged_out", "revoked"}`' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand logout" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand status" -l gateway -d 'Gateway URL; without one, hoopx runs an embedded gateway in-process' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand status" -l token -d 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)' -r
complete -c hoopx -n "__fish_hoopx_using_subcommand status" -s o -l output -d 'Output format' -r -f -a "text\t''
json\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand status" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand completion" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand completion" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand man" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand generate" -l out -d 'Directory that receives `completions/` and `man/`' -r -F
complete -c hoopx -n "__fish_hoopx_using_subcommand generate" -l color -d 'Color in hoopx\'s messages: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t'When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`'
always\t''
never\t''"
complete -c hoopx -n "__fish_hoopx_using_subcommand generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "exec" -d 'Run a command through the gateway: `hoopx exec -- psql -h db`'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "gateway" -d 'Run or manage a gateway'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "sessions" -d 'List and inspect recorded sessions'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "mcp" -d 'Serve hoopx to AI agents as an MCP server over stdio (tools: exec, sessions, replay_text)'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "review" -d 'Decide the commands that wait for approval: list, show, approve, reject, revoke'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "replay" -d 'Play a recorded session (or watch a live one), or export it as text, asciicast or JSON'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "verify" -d 'Prove a recording unaltered (hash chain, signatures, signed close, ledger), or the whole store against its ledger with --all, or an evidence export offline'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "login" -d 'Log in to a gateway\'s identity provider (device flow; --browser; --client-credentials)'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "logout" -d 'Forget the login for a gateway and revoke it at the identity provider'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "status" -d 'Show who you are at the gateway: identity, groups, token source and expiry'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "completion" -d 'Print the shell completion script: `hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx`'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "man" -d 'Print a man page (roff): `hoopx man exec | man -l -`'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "generate" -d 'Regenerate shell completions and man pages (for packagers and the repository)'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and not __fish_seen_subcommand_from exec gateway sessions mcp review replay verify login logout status completion man generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from gateway" -f -a "serve" -d 'Serve the HTTP API and session streams'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from gateway" -f -a "check" -d 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from gateway" -f -a "prune" -d 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "list" -d 'List sessions, newest first'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "show" -d 'Show one session, with the verification of its recording'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "export" -d 'Write sessions, their reviews, the ledger covering them and the gateway\'s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from review" -f -a "list" -d 'List reviews, newest first'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from review" -f -a "show" -d 'Show one review: the exact command, who asked, and every decision'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from review" -f -a "approve" -d 'Approve a pending review (you cannot approve your own request)'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from review" -f -a "reject" -d 'Reject a pending review; the command or line never runs'
complete -c hoopx -n "__fish_hoopx_using_subcommand help; and __fish_seen_subcommand_from review" -f -a "revoke" -d 'Withdraw a pending request or an approval not used yet'
