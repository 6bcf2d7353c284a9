# Sourced by the device scripts (tooling/bench-*.sh, device-golden-check.sh) from the repository
# root on the GPU machine: the Vulkan loader bundled in .gl/ (tooling/bench-bundle.sh; the machine
# has none) and NVIDIA's Vulkan driver, for Dawn; and the Python settings of every device call.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
# Python's output unbuffered (a call's log shows how far it got when it runs out of time), and
# transformers never reaching for the Hub (the machine has no network).
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
