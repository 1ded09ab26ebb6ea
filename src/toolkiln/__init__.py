"""toolkiln: a reproducible DAG for teaching language models to use tools.

Parts: ToolACE-style data synthesis (arXiv 2409.00920), iTool-style training
(arXiv 2501.09766) and ADNT multi-source domain adaptation (arXiv 2208.02947).
"""

__version__ = "0.1.0"
