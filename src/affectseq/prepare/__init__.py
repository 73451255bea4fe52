"""Preparing datasets from raw videos (stage 9): face crops for videos that have labels but no crops.

``affectseq data faces`` runs :func:`affectseq.prepare.face_crops.export_face_crops`.
"""
