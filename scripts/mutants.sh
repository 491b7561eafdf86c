#!/usr/bin/env bash
# Mutation testing of the rules the lab promises (issue 37), with cargo-mutants
# (`cargo install cargo-mutants --locked`): each mutant of a listed module is built and tested
# against its own crate's tests; a mutant no test catches is a promise no test guards.
#
#   scripts/mutants.sh          every listed module (make mutants; an hour or more on 2 cores)
#   scripts/mutants.sh ci       the time-boxed subset CI runs: the commit point's rule and
#                               token validation (a few minutes on a built tree)
#   scripts/mutants.sh SECTION  one section below (adds, tenant, engine, dcs, forests, relay)
#   MUTANTS_ARGS=--iterate scripts/mutants.sh tenant   only what the last run missed
#
# By default the mutants are made in a git worktree of HEAD under target/mutants/tree (its own
# build, reused by later runs), never in this checkout; MUTANTS_IN_PLACE=1 mutates this
# checkout itself and reuses its build (CI, whose clone is thrown away). Reports go to
# target/mutants/<section>/mutants.out (caught.txt, missed.txt, unviable.txt, timeout.txt).
# Exit status: non-zero when a mutant was missed or timed out. docs/testing.md has the
# figures and the mutants left on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
command -v cargo-mutants >/dev/null || { echo "needs cargo-mutants: cargo install cargo-mutants --locked" >&2; exit 2; }

# section → the files and the mutant names (a regex over "file:line:col: what") it covers
section() {
  tests=()
  case "$1" in
    # AD DS: passwords, lockout, who may do what, protected accounts, pwdLastSet
    adds) files=(crates/ad-ds/src/account.rs crates/ad-ds/src/policy.rs crates/ad-ds/src/access.rs crates/ad-wire/src/rights.rs crates/ad-wire/src/security.rs crates/ad-ds/src/directory.rs)
          # the vocabulary (ad-wire) is judged by the DC's tests too
          tests=(--test-package ad-ds,ad-wire)
          re='^crates/ad-ds/src/(account|policy|access)\.rs|^crates/ad-wire/src/rights\.rs|^crates/ad-wire/src/security\.rs.*(model_of|model_on|broad_deny|acl_fits|dacl_with|dacl_without|Ace::(allows|mask|sid))|^crates/ad-ds/src/directory\.rs.*Directory::(has_right|is_protected|stamp_protected|pwd_last_set_for|password_modify|need|require_admin|read_dacl|write_dacl|dacl_of|rekey_access|forget_written|set_inheritance|inherits|security_descriptor)\b' ;;
    # the tenant: token validation, SSPR's gates and counters, roles, sign-in and smart lockout,
    # the interactive grants (redirect URIs, PKCE, codes, device flows), Graph's query rules;
    # Cloud Sync's: which agent writes a user back, its job and provisioning log, exports by agent
    tenant) files=(crates/tenant/src/token.rs crates/tenant/src/sspr.rs crates/tenant/src/roles.rs crates/tenant/src/directory.rs crates/tenant/src/signins.rs crates/tenant/src/authorize.rs crates/tenant/src/odata.rs crates/tenant/src/cloudsync.rs crates/tenant/src/sync.rs)
          re='^crates/tenant/src/(token|sspr|roles|authorize|odata|cloudsync|sync)\.rs|^crates/tenant/src/directory\.rs.*(Tenant::(sign_in(_start|_finish)?|pass_through_finish|signed_in|second_half|writeback_enabled_for|cloud_sync_admin|agent_of)|SmartLockout::(failure|succeeded)|bad_password_fingerprint)\b|^crates/tenant/src/signins\.rs.*(AgentAnswer|SignInLog|estimate|SignInMethod)' ;;
    # the engine: the commit point, what a failure is called (Connect's event, Cloud Sync's
    # trace line), Cloud Sync's scope limit and cycle
    # (sync.rs's scope rules were run on their own: cargo-mutants 27.1 lets the file's "delete
    # field" mutants of its I/O functions through any --re; docs/testing.md)
    engine) files=(crates/writeback/src/lib.rs crates/writeback/src/events.rs crates/writeback/src/cloudsync.rs crates/writeback/src/dcs.rs)
          re='^crates/writeback/src/lib\.rs.*\b(admit|check_scope|cycle_interval|Ring::push)\b|^crates/writeback/src/events\.rs|^crates/writeback/src/cloudsync\.rs.*permission_rights|^crates/writeback/src/dcs\.rs' ;;
    # several DCs: replication's per-attribute merge and watermarks, the schedule, the PDC
    # emulator's part in a bind and urgent replication (issue 36)
    dcs)  files=(crates/ad-ds/src/directory/replication.rs crates/ad-ds/src/topology.rs crates/ad-ds/src/directory.rs crates/ad-ds/src/session.rs crates/ad-ds/src/server.rs)
          re='^crates/ad-ds/src/directory/replication\.rs|^crates/ad-ds/src/topology\.rs|^crates/ad-ds/src/directory\.rs.*Directory::originate|^crates/ad-ds/src/session\.rs.*Session::(check_at_pdc|urgent_to_pdc)|^crates/ad-ds/src/server\.rs.*replicate_urgently' ;;
    # several forests: the metaverse's join by anchor, the enabled account's contribution,
    # which connector a writeback goes to (33003) (issue 36)
    forests) files=(crates/writeback/src/connectors.rs)
          re='^crates/writeback/src/connectors\.rs.*\b(route|winner|merge)\b' ;;
    # the relay's sealing of passwords
    relay) files=(crates/relay/src/lib.rs)
          re='DataKey|Sealed|unwrap_key|KeyCache' ;;
    # what CI runs: the commit point's rule, token validation
    ci)   files=(crates/writeback/src/lib.rs crates/tenant/src/token.rs)
          re='^crates/writeback/src/lib\.rs.*\badmit\b|Signer::validate' ;;
    *) echo "unknown section $1 (adds, tenant, engine, dcs, forests, relay, ci)" >&2; exit 2 ;;
  esac
}

# Equivalent mutants, left out on purpose (docs/testing.md says why for each):
exclude=(
  # which library signs a process's first tokens: ring or AWS-LC give the same RS256 bytes;
  # only the start-up time differs (measured by lab-bench, not testable as behaviour)
  'replace == with != in SigningKey::sign'
  # `|` of two distinct one-bit flags (UF_*) is their `^`: the same value
  'replace \| with \^ in (init_user|stored_uac|check_user_state|model_on|broad_deny|password_expiry)$'
)
exclude_args=()
for e in "${exclude[@]}"; do exclude_args+=(--exclude-re "$e"); done

if [ "${MUTANTS_IN_PLACE:-}" = 1 ]; then
  tree=$root
  place=(--in-place)
else
  tree=$root/target/mutants/tree
  if [ -d "$tree" ]; then
    git -C "$tree" checkout -q --detach "$(git rev-parse HEAD)"
  else
    mkdir -p "$root/target/mutants"
    git worktree add -q --detach "$tree" HEAD
  fi
  place=(--in-place)   # in the worktree: nothing here is touched
fi

[ $# -gt 0 ] || set -- adds tenant engine dcs forests relay
status=0
for s in "$@"; do
  section "$s"
  args=()
  for f in "${files[@]}"; do args+=(-f "$f"); done
  out=$root/target/mutants/$s
  mkdir -p "$out"
  echo "== $s"
  # nextest stops a mutant's tests at the first failure; a test run that hangs is a timeout
  (cd "$tree" && cargo mutants "${place[@]}" --test-tool nextest --timeout 180 --build-timeout 900 \
    --no-shuffle "${args[@]}" ${tests[@]+"${tests[@]}"} --re "$re" "${exclude_args[@]}" ${MUTANTS_ARGS:-} -o "$out") || status=$?
  for k in caught missed unviable timeout; do
    printf '%s %s  ' "$k" "$(wc -l <"$out/mutants.out/$k.txt" 2>/dev/null || echo 0)"
  done
  echo
done
exit $status
