#!/bin/sh
# Whole nightly runs under the hostile fault profile at 5,000 seeded contacts, three seeds side by
# side: each converges (a run exits 0 within ten), its final state equals a clean run's, nothing
# happened twice, and one more run plans nothing. Writes bench-output/hostile-convergence.json.
#
#   bench/hostile.sh                      # debug build, 5,000 contacts, 3 trials
#   PROFILE=release CONTACTS=2000 TRIALS=2 bench/hostile.sh
set -eu
cd "$(dirname "$0")/.."
profile_flag=""
if [ "${PROFILE:-dev}" = release ]; then profile_flag="--release"; fi
CONTACTSYNC_COMMIT="$(git rev-parse --short HEAD)" \
CONTACTSYNC_HOSTILE_CONTACTS="${CONTACTS:-5000}" \
CONTACTSYNC_HOSTILE_TRIALS="${TRIALS:-3}" \
  cargo test $profile_flag --test pipeline hostile_faults_converge_at_scale -- --ignored --nocapture
