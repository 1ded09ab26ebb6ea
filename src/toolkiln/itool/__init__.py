"""iTool iterative reinforced fine-tuning: deficiencies, step-level MCTS preference pairs, SimPO/DPO rounds (iTool arXiv 2501.09766 §3.2-3.3)."""
