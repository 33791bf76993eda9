"""The paper's reference numbers (Baldi, Sadowski, Lu, Artificial Intelligence 260, 2018, Table 1),
as data: final test accuracy % after 100 epochs, mean (sd) over 5 seeds; quantized rows are single runs."""

MNIST_TABLE1 = {
    # row: {algorithm column: (mean, sd or None)}
    "baseline": {"bp": (97.9, 0.1), "rbp": (97.2, 0.1), "srbp": (97.2, 0.2), "top": (84.7, 0.7)},
    "no_fprime": {"bp": (89.9, 0.3), "rbp": (88.3, 1.1), "srbp": (88.4, 0.7)},
    "adaptive": {"rbp": (97.3, 0.1), "srbp": (97.3, 0.1)},
    "sparse_8": {"rbp": (96.0, 0.4), "srbp": (96.9, 0.1)},
    "sparse_2": {"rbp": (96.3, 0.5), "srbp": (95.8, 0.2)},
    "sparse_1": {"rbp": (90.3, 1.1), "srbp": (94.6, 0.6)},
    "qerror_5": {"bp": (97.6, None), "rbp": (95.4, None), "srbp": (95.1, None)},
    "qerror_3": {"bp": (96.5, None), "rbp": (92.5, None), "srbp": (93.2, None)},
    "qerror_1": {"bp": (94.6, None), "rbp": (89.8, None), "srbp": (91.6, None)},
    "qupdate_5": {"bp": (95.2, None), "rbp": (94.0, None), "srbp": (93.3, None)},
    "qupdate_3": {"bp": (96.5, None), "rbp": (91.0, None), "srbp": (92.2, None)},
    "qupdate_1": {"bp": (92.5, None), "rbp": (9.6, None), "srbp": (90.7, None)},
    "dropout_10": {"bp": (97.7, None), "rbp": (96.5, None), "srbp": (97.1, None)},
    "dropout_20": {"bp": (97.8, None), "rbp": (96.7, None), "srbp": (97.2, None)},
    "dropout_50": {"bp": (97.7, None), "rbp": (96.7, None), "srbp": (97.1, None)},
}

CIFAR10_TABLE1 = {
    "baseline": {"bp": (83.4, 0.2), "rbp": (70.2, 1.1), "srbp": (72.7, 0.8), "top": (47.9, 0.4)},
    "no_fprime": {"bp": (54.8, 3.6), "rbp": (32.7, 6.2), "srbp": (39.9, 3.9)},
    "sparse_8": {"rbp": (46.3, None), "srbp": (70.9, None)},
    "sparse_2": {"rbp": (62.9, None), "srbp": (65.7, None)},
    "sparse_1": {"rbp": (56.7, None), "srbp": (62.6, None)},
}
