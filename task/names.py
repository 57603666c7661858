"""The names a run config may choose from, importable without torch (config checks, CLI)."""

DATASET_NAMES = ("digits", "fashion-mnist", "mnist", "cifar10", "synthetic-cifar")
PARTITION_NAMES = ("iid", "shards", "dirichlet")
MODEL_NAMES = ("cnn", "resnet18", "densenet121", "mobilenetv2")
DEVICE_NAMES = ("auto", "cpu", "cuda")
SCENARIO_NAMES = ("cpu", "gpu")
# Learning-rate laws: eta = eta0 sqrt(B / B0) (Sec. III-A) or eta = eta0 at every B.
LR_SCALINGS = ("sqrt", "fixed")
# How a gradient scheme's global model takes its BatchNorm statistics from the global batch.
BN_STATISTICS = ("global-batch", "momentum")
# How the server combines the devices' updates: Eq. (1), or a robust mean of them.
AGGREGATIONS = ("mean", "clipped", "trimmed-mean", "median")
# The adversarial faults one chosen device can inject (run-config ``attack``).
ATTACKS = ("scaled-gradient", "lying-profile", "foreign-partition", "huge-statistics")
