# protea_reaper: PGXS build.  `make && make install`, then see README.md.

MODULE_big = protea_reaper
OBJS = \
	src/dbcommands.o \
	src/doctor.o \
	src/launcher.o \
	src/notify.o \
	src/plans.o \
	src/policy.o \
	src/protea_reaper.o \
	src/reaplog.o \
	src/runbook.o \
	src/settings.o \
	src/statements.o \
	src/status.o \
	src/sweep.o \
	src/tables.o \
	src/worker.o

EXTENSION = protea_reaper
DATA = sql/protea_reaper--1.0.sql sql/protea_reaper--1.1.sql sql/protea_reaper--1.2.sql sql/protea_reaper--1.3.sql sql/protea_reaper--1.4.sql \
	sql/protea_reaper--1.0--1.1.sql sql/protea_reaper--1.1--1.2.sql sql/protea_reaper--1.2--1.3.sql sql/protea_reaper--1.3--1.4.sql
PGFILEDESC = "protea_reaper - in-server reaper for stale PROTEA jobs"

# pg_regress: sql/<name>.sql against expected/<name>.out
REGRESS = setup core guards settings tables labels protea security batches api plans policy doctor timestamps lease upgrade preload
REGRESS_OPTS = --inputdir=.

# pg_isolation_regress: test/isolation/specs/<name>.spec
ISOLATION = complete_during_sweep event_during_sweep concurrent_sweeps locked_job delete_during_sweep fail_job_locked lease_renewal_during_sweep
ISOLATION_OPTS = --inputdir=test/isolation

# TAP: test/t/*.pl with PostgreSQL::Test::Cluster
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Werror

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
