"""Known problems the shipped models are tested on (model tests and service tests share them)."""

MAZE = ["#########", "#S    # #", "### # # #", "#   #   #", "# ##### #", "#   #  G#", "#########"]
# The first full 30x30 maze of data/maze30/test (seed 30), never trained on; models/maze-30 solves it.
MAZE30 = [
    "##############################",
    "#       #     #         #   ##",
    "# ####### # # # # ##### # ####",
    "#           # # #       #   ##",
    "# ########### # # # # # ### ##",
    "#   #     #   # #   #     # ##",
    "### # ##### # # ######### # ##",
    "# # #     # #         # # # ##",
    "# # ##### # ### ### # # # # ##",
    "# #   #   #   #     # # #   ##",
    "# ### # ##### # # ### #S### ##",
    "#     #       # # #   #     ##",
    "# # # # # # ### ### ### ######",
    "# # #     #   #   # # # #   ##",
    "### ##### ### # # # # # # # ##",
    "#   #     # #   #   #   # # ##",
    "# ### ##### ### ##### ### # ##",
    "# #   #       #   #   #   # ##",
    "# # ### ##### # # # # ### # ##",
    "#   #   #     #  G# #   #   ##",
    "# ### ### # # ### # # # # # ##",
    "#     #   # #   # #   # # # ##",
    "# # # # # ##### # ##### # # ##",
    "# #   # # #     # #   #   # ##",
    "# ### # ### ##### # # # # # ##",
    "#   #       #   #   #   #   ##",
    "### # # # ##### ##### # # # ##",
    "#     #             #     # ##",
    "##############################",
    "##############################",
]

# A minimal Sudoku (generated with seed 777, "hard" bucket; never trained on) that models/sudoku gets
# wrong in one plain attempt (16 steps, the check fails) and solves with test-time compute: a
# symmetric view among 8 adaptive attempts passes the exact check.
SUDOKU_PLAIN_FAILS = "1.7.8.........61...4......3..631....5.....2.....6...9.3....2....219..8...9....64."
