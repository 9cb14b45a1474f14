#!/usr/bin/env sh
# The nightly catalogue for CI systems other than GitHub Actions (GitLab, Jenkins, cron): keep the take cache
# between runs (the jobs' `cache:` folder, as a CI cache or on a persistent disk), set the key's variable, run this.
# Exit code: 0 done or nothing to do; otherwise the worst book's (see the README's exit codes).
set -eu
CATALOGUE=${CATALOGUE:-pipelines/catalogue.yaml}

# what changed since the last build, book by book; exit 0 when every book is up to date
narrator diff "$CATALOGUE" --check && { echo "every book is up to date"; exit 0; }

# writes catalogue-report.json and junit.xml beside the out/ folders: keep them as the job's artifacts
exec narrator run "$CATALOGUE" --report catalogue-report.json --junit junit.xml --no-progress
