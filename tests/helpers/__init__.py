"""Writers of the tiny datasets the tests make on the fly (COCO, SigMF, spectrogram folders)."""
