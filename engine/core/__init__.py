"""The packet path's pure part: frame parsing, the classifier, links and the per-direction
pipeline, on an injected clock. Imports only the model.
"""
