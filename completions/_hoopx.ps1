
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'hoopx' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'hoopx'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'hoopx' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command through the gateway: `hoopx exec -- psql -h db`')
            [CompletionResult]::new('gateway', 'gateway', [CompletionResultType]::ParameterValue, 'Run or manage a gateway')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'List and inspect recorded sessions')
            [CompletionResult]::new('mcp', 'mcp', [CompletionResultType]::ParameterValue, 'Serve hoopx to AI agents as an MCP server over stdio (tools: exec, sessions, replay_text)')
            [CompletionResult]::new('review', 'review', [CompletionResultType]::ParameterValue, 'Decide the commands that wait for approval: list, show, approve, reject, revoke')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Play a recorded session (or watch a live one), or export it as text, asciicast or JSON')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove a recording unaltered (hash chain, signatures, signed close, ledger), or the whole store against its ledger with --all, or an evidence export offline')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in to a gateway''s identity provider (device flow; --browser; --client-credentials)')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget the login for a gateway and revoke it at the identity provider')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show who you are at the gateway: identity, groups, token source and expiry')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print the shell completion script: `hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx`')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): `hoopx man exec | man -l -`')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Regenerate shell completions and man pages (for packagers and the repository)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;exec' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Target to open the session on; by default the one target that runs the command')
            [CompletionResult]::new('--review', '--review', [CompletionResultType]::ParameterName, 'Run under this approved review (single-use): of this very command line, or of one input line of it, which it then releases once')
            [CompletionResult]::new('--approval-timeout', '--approval-timeout', [CompletionResultType]::ParameterName, 'Give up waiting for a review after this long (exit 75), e.g. 10m. Default: wait until it is decided or expires')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`json`: NDJSON events on stdout (session, stdout, stderr, approval_pending, approved, denied, exit) instead of the tool''s raw output; implies --no-tty')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`json`: NDJSON events on stdout (session, stdout, stderr, approval_pending, approved, denied, exit) instead of the tool''s raw output; implies --no-tty')
            [CompletionResult]::new('--capture-limit', '--capture-limit', [CompletionResultType]::ParameterName, 'Bytes of stdout and of stderr kept by --capture; the rest is dropped and flagged')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('--tty', '--tty', [CompletionResultType]::ParameterName, 'Run the command under a pseudo-terminal even when stdin/stdout are not terminals')
            [CompletionResult]::new('--no-tty', '--no-tty', [CompletionResultType]::ParameterName, 'Run the command under pipes (stdout and stderr kept apart) even on a terminal')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Do not wait for a review: exit 75 at once with the review id (a review of an input line stays pending; run again with the same input and --review ID once approved)')
            [CompletionResult]::new('--capture', '--capture', [CompletionResultType]::ParameterName, 'For tool calls: run under pipes and print one JSON object at the end (session_id, exit_code, masked stdout and stderr, truncation flags, notices) instead of the output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;gateway' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the HTTP API and session streams')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;gateway;serve' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML config (targets and rules); without one, the default policy')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store URL: sqlite://PATH (default: gateway.db in the XDG data dir) or postgres://…')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The Ed25519 key that signs recordings (PKCS#8 PEM, mode 0600), created if missing. Default: gateway-signing.pem in the XDG data dir. Give replicas the same key')
            [CompletionResult]::new('--drain-grace', '--drain-grace', [CompletionResultType]::ParameterName, 'On SIGTERM or Ctrl-C, how long running sessions may go on (new ones are refused at once and /v1/ready answers 503); those still running then end as aborted. A second SIGTERM or Ctrl-C ends them at once')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'How long this replica''s lease in the store lasts unless renewed (tests shorten it)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'The log on stderr: `text` (one line per event) or `json` (one object per line). The filter comes from HOOPX_LOG, else RUST_LOG, else `info`')
            [CompletionResult]::new('--metrics-listen', '--metrics-listen', [CompletionResultType]::ParameterName, 'Also serve Prometheus metrics (`/metrics`) on this address, e.g. 127.0.0.1:9433 (they are always at /metrics on --listen too)')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Serve HTTPS with this certificate chain (PEM); reloaded on SIGHUP and when the file changes')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('--dev', '--dev', [CompletionResultType]::ParameterName, 'Development mode: accept one bearer token, HOOPX_DEV_TOKEN or a generated one (beside the OpenID tokens of an [auth] table, if the config has one)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;gateway;check' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML config file')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`json`: one object (`ok`, counts, targets; or `error` with file, line, column)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`json`: one object (`ok`, counts, targets; or `error` with file, line, column)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('--dev', '--dev', [CompletionResultType]::ParameterName, 'Check for `serve --dev`: a config without an [auth] table is then fine')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;gateway;prune' {
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Prune sessions that ended longer ago than this, e.g. 90d (default: the config''s [store] retention)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The gateway''s TOML config, for its [store] retention')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Store URL, as for `gateway serve` (default: gateway.db in the XDG data dir)')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'The gateway''s signing key, which signs the ledger''s prune entries (default: gateway-signing.pem in the XDG data dir). It must exist')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`json`: one object (`pruned`: the sessions, `dry_run`, `older_than_ms`)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`json`: one object (`pruned`: the sessions, `dry_run`, `older_than_ms`)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be pruned; change nothing')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;gateway;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the HTTP API and session streams')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;gateway;help;serve' {
            break
        }
        'hoopx;gateway;help;check' {
            break
        }
        'hoopx;gateway;help;prune' {
            break
        }
        'hoopx;gateway;help;help' {
            break
        }
        'hoopx;sessions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one session, with the verification of its recording')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write sessions, their reviews, the ledger covering them and the gateway''s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;sessions;list' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only sessions of this identity')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Only sessions on this target')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only sessions started within this long, e.g. 90m, 24h, 7d')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only sessions in this state: open, running, exited, aborted or denied')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many sessions to show at most')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;sessions;show' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;sessions;export' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only sessions started within this long, e.g. 24h, 30d')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only sessions of this identity')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Only sessions on this target')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;sessions;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one session, with the verification of its recording')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write sessions, their reviews, the ledger covering them and the gateway''s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;sessions;help;list' {
            break
        }
        'hoopx;sessions;help;show' {
            break
        }
        'hoopx;sessions;help;export' {
            break
        }
        'hoopx;sessions;help;help' {
            break
        }
        'hoopx;mcp' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;review' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List reviews, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one review: the exact command, who asked, and every decision')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a pending review (you cannot approve your own request)')
            [CompletionResult]::new('reject', 'reject', [CompletionResultType]::ParameterValue, 'Reject a pending review; the command or line never runs')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Withdraw a pending request or an approval not used yet')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;review;list' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only reviews in this state')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many reviews to show at most')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;review;show' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;review;approve' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why, recorded with the decision')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;review;reject' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why, recorded with the decision and shown to the requester')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;review;revoke' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'reason')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;review;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List reviews, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one review: the exact command, who asked, and every decision')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a pending review (you cannot approve your own request)')
            [CompletionResult]::new('reject', 'reject', [CompletionResultType]::ParameterValue, 'Reject a pending review; the command or line never runs')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Withdraw a pending request or an approval not used yet')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;review;help;list' {
            break
        }
        'hoopx;review;help;show' {
            break
        }
        'hoopx;review;help;approve' {
            break
        }
        'hoopx;review;help;reject' {
            break
        }
        'hoopx;review;help;revoke' {
            break
        }
        'hoopx;review;help;help' {
            break
        }
        'hoopx;replay' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'What to write: play it (pty), or export it (text, cast, cast3, json, sql, requests)')
            [CompletionResult]::new('--speed', '--speed', [CompletionResultType]::ParameterName, 'Playback speed factor, e.g. 2 or 0.5')
            [CompletionResult]::new('--idle-limit', '--idle-limit', [CompletionResultType]::ParameterName, 'Shorten pauses longer than this many seconds')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Start here: a time (90, 1:30, 1m30s, 500ms) or a marker''s text (e.g. denied)')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Stop here: a time or a marker''s text')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Watch a running session live: catch up from its start, then follow until it ends')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;verify' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'With --all: check only sessions started within this long, e.g. 24h, 30d (the ledger itself is always checked whole)')
            [CompletionResult]::new('--head', '--head', [CompletionResultType]::ParameterName, 'With --all: a ledger head kept from an earlier run (`SIZE:HASH`, as printed); the ledger must still begin with exactly those entries')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The public key to trust: base64 of the 32 key bytes, a PEM block, or a file holding either (the gateway serves its keys at /v1/keys). Without it: the gateway''s key for a session; for a file, its key only if it is the configured gateway''s or one of this machine''s gateways''')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`text` for people, `json` for scripts and agents (shapes: docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Check the gateway''s whole session ledger against the sessions in its store: every session deleted, cut short, re-opened or inserted is reported')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;login' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL (default: HOOPX_GATEWAY, then the client config''s `gateway`)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`json`: NDJSON on stdout — a `device_code` event (address and code to relay to a person) when the device flow starts, then a `logged_in` event (docs/JSON.md)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`json`: NDJSON on stdout — a `device_code` event (address and code to relay to a person) when the device flow starts, then a `logged_in` event (docs/JSON.md)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('--browser', '--browser', [CompletionResultType]::ParameterName, 'Log in in a browser on this machine (authorization code with PKCE and a 127.0.0.1 redirect) instead of the device flow')
            [CompletionResult]::new('--no-open', '--no-open', [CompletionResultType]::ParameterName, 'With --browser: print the address instead of opening a browser')
            [CompletionResult]::new('--client-credentials', '--client-credentials', [CompletionResultType]::ParameterName, 'Log in as a machine with HOOPX_CLIENT_ID and HOOPX_CLIENT_SECRET')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;logout' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL (default: HOOPX_GATEWAY, then the client config''s `gateway`)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, '`json`: one object, `{"gateway", "logged_out", "revoked"}`')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, '`json`: one object, `{"gateway", "logged_out", "revoked"}`')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;status' {
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway URL; without one, hoopx runs an embedded gateway in-process')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;completion' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;man' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;generate' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Directory that receives `completions/` and `man/`')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in hoopx''s messages: auto (a terminal, and NO_COLOR unset), always or never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'hoopx;help' {
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command through the gateway: `hoopx exec -- psql -h db`')
            [CompletionResult]::new('gateway', 'gateway', [CompletionResultType]::ParameterValue, 'Run or manage a gateway')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'List and inspect recorded sessions')
            [CompletionResult]::new('mcp', 'mcp', [CompletionResultType]::ParameterValue, 'Serve hoopx to AI agents as an MCP server over stdio (tools: exec, sessions, replay_text)')
            [CompletionResult]::new('review', 'review', [CompletionResultType]::ParameterValue, 'Decide the commands that wait for approval: list, show, approve, reject, revoke')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Play a recorded session (or watch a live one), or export it as text, asciicast or JSON')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove a recording unaltered (hash chain, signatures, signed close, ledger), or the whole store against its ledger with --all, or an evidence export offline')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in to a gateway''s identity provider (device flow; --browser; --client-credentials)')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget the login for a gateway and revoke it at the identity provider')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show who you are at the gateway: identity, groups, token source and expiry')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print the shell completion script: `hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx`')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): `hoopx man exec | man -l -`')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Regenerate shell completions and man pages (for packagers and the repository)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopx;help;exec' {
            break
        }
        'hoopx;help;gateway' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the HTTP API and session streams')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check a gateway config file as `serve` would with the same flags, and exit (0 if it would start, 78 if not). Every error found is reported, and settings that would be ignored are warned about')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Remove sessions that ended longer ago than a period from the store: their events and checkpoints go, the ledger keeps their entries and enters each prune. Export them first (`hoopx sessions export`) to keep the evidence')
            break
        }
        'hoopx;help;gateway;serve' {
            break
        }
        'hoopx;help;gateway;check' {
            break
        }
        'hoopx;help;gateway;prune' {
            break
        }
        'hoopx;help;sessions' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one session, with the verification of its recording')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write sessions, their reviews, the ledger covering them and the gateway''s keys to a directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline')
            break
        }
        'hoopx;help;sessions;list' {
            break
        }
        'hoopx;help;sessions;show' {
            break
        }
        'hoopx;help;sessions;export' {
            break
        }
        'hoopx;help;mcp' {
            break
        }
        'hoopx;help;review' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List reviews, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one review: the exact command, who asked, and every decision')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a pending review (you cannot approve your own request)')
            [CompletionResult]::new('reject', 'reject', [CompletionResultType]::ParameterValue, 'Reject a pending review; the command or line never runs')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Withdraw a pending request or an approval not used yet')
            break
        }
        'hoopx;help;review;list' {
            break
        }
        'hoopx;help;review;show' {
            break
        }
        'hoopx;help;review;approve' {
            break
        }
        'hoopx;help;review;reject' {
            break
        }
        'hoopx;help;review;revoke' {
            break
        }
        'hoopx;help;replay' {
            break
        }
        'hoopx;help;verify' {
            break
        }
        'hoopx;help;login' {
            break
        }
        'hoopx;help;logout' {
            break
        }
        'hoopx;help;status' {
            break
        }
        'hoopx;help;completion' {
            break
        }
        'hoopx;help;man' {
            break
        }
        'hoopx;help;generate' {
            break
        }
        'hoopx;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
