# bonesegd — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift

.PHONY: build release test demo clean

build:
	$(SWIFT) build

release:
	scripts/install-deps.sh
	$(SWIFT) build -c release

# The README's test command.
test:
	scripts/install-deps.sh
	$(SWIFT) test

# The README's main job (until the daemon and a trained demo release exist):
# a phantom radiograph, a deterministic UNet++-resnet34 in SMP's layout, its
# CSV, overlay and sidecar, and the forward-pass benchmark.
demo: release
	scripts/demo.sh

clean:
	rm -rf .build
