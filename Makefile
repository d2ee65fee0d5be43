# bonesegd — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift

.PHONY: build release test demo clean install

build:
	$(SWIFT) build

release:
	scripts/install-deps.sh
	$(SWIFT) build -c release

# The README's test command.
test:
	scripts/install-deps.sh
	$(SWIFT) test

# The README's main job: bonesegd on a local spool (DEMO_DIR, default
# /tmp/bonesegd-demo) serving a release of a deterministic UNet++-resnet34 in
# SMP's layout, fed phantom radiographs; then the forward-pass benchmark.
demo: release
	scripts/demo.sh

clean:
	rm -rf .build

# Installs the release binaries, systemd units (the daemon; the nightly retrain
# service and its timer), sysusers/tmpfiles entries, the default configuration
# (kept if one exists) and the man pages.
# `make install PREFIX=/usr DESTDIR=/tmp/stage` stages a package.
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
SYSCONFDIR ?= /etc

install:
	$(SWIFT) build -c release --product bonesegd
	$(SWIFT) build -c release --product bonectl
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSCONFDIR)/bonesegd
	install -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/bonesegd" $(DESTDIR)$(BINDIR)/bonesegd
	install -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/bonectl" $(DESTDIR)$(BINDIR)/bonectl
	sed 's|/usr/local/bin/bonesegd|$(BINDIR)/bonesegd|' systemd/bonesegd.service > $(DESTDIR)$(SYSTEMDDIR)/bonesegd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/bonesegd.service
	sed 's|/usr/local/bin/bonectl|$(BINDIR)/bonectl|' systemd/bonesegd-retrain.service > $(DESTDIR)$(SYSTEMDDIR)/bonesegd-retrain.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/bonesegd-retrain.service
	install -m 0644 systemd/bonesegd-retrain.timer $(DESTDIR)$(SYSTEMDDIR)/bonesegd-retrain.timer
	install -m 0644 systemd/sysusers.d/bonesegd.conf $(DESTDIR)$(SYSUSERSDIR)/bonesegd.conf
	install -m 0644 systemd/tmpfiles.d/bonesegd.conf $(DESTDIR)$(TMPFILESDIR)/bonesegd.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/bonesegd/bonesegd.conf || install -m 0644 etc/bonesegd.conf $(DESTDIR)$(SYSCONFDIR)/bonesegd/bonesegd.conf
	install -m 0644 man/bonesegd.8 man/bonectl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/bonesegd.conf.5 $(DESTDIR)$(MANDIR)/man5/
