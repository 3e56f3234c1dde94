"""Wire formats, codes and protocol rules shared by the relay, agency clients and the auditor.

Pure: nothing in this package performs I/O, reads the clock or the environment.
"""
