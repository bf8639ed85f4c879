#!/bin/sh
# Container entrypoint: one image, one role per container.
#
#   web (default)  migrate + setup_schedules (serialised, see below), then serve
#   serve          gunicorn only: for pods whose migrate initContainer already ran
#   worker         wait until no migration is pending, then the django-q2 cluster (qcluster)
#   migrate        migrate + setup_schedules, then exit
#   fetch_prices | optimize | rebalance | execute | run_pipeline [ARGS]
#                  the seed's one-shot commands: `manage.py <name> ARGS`, then exit
#   manage ARGS    any other manage.py command (createsuperuser, rotate_credentials, kill_switch...)
#   anything else  executed as given (sh, python ...)
#
# Where migrations run: before gunicorn, in the web role (on Kubernetes, the web pod's `migrate`
# initContainer), through docker/migrate_with_lock.py. So no web process answers on an older
# schema, whatever order things start in: Kubernetes applies a migration Job and a Deployment
# side by side, with no "after". Several web replicas starting at once are safe because that
# script holds a PostgreSQL advisory lock around migrate: one applies, the others wait and find
# nothing to do (plain `migrate` from three replicas at once: two crash, "relation already
# exists"). Workers and one-shots never migrate; a worker waits instead, so a new worker never
# runs against an old schema.
set -eu

# Relative paths (manage.py, gunicorn.conf.py, STORAGE_PATH=data) are relative to the project.
cd "$(dirname "$0")/.."

# Metric files of a previous run of this container (a restart keeps /tmp) would be summed into
# /metrics: gunicorn.conf.py keeps the files of PIDs that are running, and after a restart the
# new processes reuse the old PIDs. The folder is this container's alone, so it starts empty;
# only the long-running roles own it (a one-shot started with `docker exec` must not clear it).
clear_metric_files() {
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
        find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
    fi
}

serve() {
    clear_metric_files
    # gunicorn.conf.py listens on 0.0.0.0:8000 unless GUNICORN_BIND/PORT say otherwise: leave them
    # unset in containers, since EXPOSE, the probes, the Service and Compose all expect 8000.
    exec gunicorn -c gunicorn.conf.py rebalancer_site.wsgi "$@"
}

wait_for_migrations() {
    while :; do
        status=0
        output=$(python manage.py migrate --check 2>&1) || status=$?
        case $status in
            0) return 0 ;;
            # A configuration error will not fix itself by waiting: stop, saying why.
            2) printf '%s\n' "$output" >&2; exit 2 ;;
        esac
        # Unapplied migrations print nothing; anything else (database unreachable) says why.
        detail=$(printf '%s' "$output" | tail -n 1)
        echo "entrypoint: waiting for the web role to apply migrations${detail:+ ($detail)}" >&2
        sleep 5
    done
}

role=${1:-web}
if [ $# -gt 0 ]; then shift; fi

case $role in
    web)
        python docker/migrate_with_lock.py
        serve "$@"
        ;;
    serve)
        serve "$@"
        ;;
    worker)
        # In this order: the `migrate --check` processes leave metric files of their own.
        wait_for_migrations
        clear_metric_files
        exec python manage.py qcluster "$@"
        ;;
    migrate)
        exec python docker/migrate_with_lock.py
        ;;
    fetch_prices | optimize | rebalance | execute | run_pipeline)
        exec python manage.py "$role" "$@"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
