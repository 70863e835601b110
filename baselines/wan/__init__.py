"""Model code of the Wan-based baselines (VACE, Phantom-Wan) on diffusers' Wan parts.

A subpackage, so that listing the models (which imports every module of `baselines/`) does not
import torch and diffusers: the adapters import these modules only when they build a model.
"""
