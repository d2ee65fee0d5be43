# bonesegd — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift

.PHONY: build release test demo clean

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

# The README's test command.
test:
	scripts/install-deps.sh
	$(SWIFT) build -c release --product bonectl
	$(SWIFT) test

# The README's main job (until the daemon and a trained demo release exist):
# import a deterministic UNet++-resnet34, segment a radiograph, benchmark the forward pass.
demo: release
	scripts/demo.sh

clean:
	rm -rf .build
