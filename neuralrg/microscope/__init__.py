"""The RG microscope: what the network does at every scale (:mod:`.analysis`: views, receptive
fields, mutual information, the renormalized energy) and every figure (:mod:`.figures`)."""
