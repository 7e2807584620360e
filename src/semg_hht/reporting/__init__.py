"""What runs leave behind for people: scores, reports, figures, sweep summaries and console tables.

Shared by training, svm, evaluation and prediction; imports none of them."""
