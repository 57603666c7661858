"""``feel paper-scale``: the paper's comparisons on Fashion-MNIST at N/K examples per device."""
