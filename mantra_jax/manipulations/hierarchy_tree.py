"""The official manipulation hierarchy (the figure the release's IMC-385 labels come from), as a tree.

``TREE`` nests levels 1 to 4 as lists (in node order); a level-5 node is ``(family, parameters)`` and each
parameter is one leaf named ``<family>-<parameter>`` (just ``<family>`` when the parameter is empty). Node
ids at every level and leaf ids are the 1-based positions in a pre-order walk, which is how
``mantra_jax.manipulations.hierarchy`` numbers them. Transcribed from the hierarchy figure; the parity test
checks the rendered table against the official csv when ../shared is present.
"""

from __future__ import annotations

TREE: list = [
    [
        [
            [
                [
                    ('BoxBlur', ('K29', 'K11')),
                    ('BoxBlur', ('K13', 'K15')),
                ],
                [
                    ('BoxBlur', ('K17', 'K19')),
                    ('BoxBlur', ('K25', 'K27')),
                ],
            ],
            [
                [
                    ('BoxBlur', ('K21', 'K23')),
                    ('BoxBlur', ('K3', 'K7')),
                ],
                [
                    ('BoxBlur', ('K5', 'K9')),
                    ('BoxBlur', ('K33', 'K31')),
                ],
            ],
        ],
        [
            [
                [
                    ('GaussianBlur', ('K33', 'K31')),
                    ('GaussianBlur', ('K5', 'K7')),
                ],
                [
                    ('GaussianBlur', ('K3', 'K9')),
                    ('GaussianBlur', ('K11', 'K13')),
                ],
            ],
            [
                [
                    ('GaussianBlur', ('K15', 'K17')),
                    ('GaussianBlur', ('K19', 'K29')),
                ],
                [
                    ('GaussianBlur', ('K21', 'K23')),
                    ('GaussianBlur', ('K25', 'K27')),
                ],
            ],
        ],
        [
            [
                [
                    ('MedianBlur', ('K21', 'K23')),
                    ('MedianBlur', ('K25', 'K27')),
                ],
                [
                    ('MedianBlur', ('K29', 'K19')),
                    ('MedianBlur', ('K15', 'K17')),
                ],
            ],
            [
                [
                    ('MedianBlur', ('K11', 'K13')),
                    ('MedianBlur', ('K9', 'K3')),
                ],
                [
                    ('MedianBlur', ('K7', 'K5')),
                    ('MedianBlur', ('K33', 'K31')),
                ],
            ],
        ],
        [
            [
                [
                    ('WaveletBlur', ('K3', 'K5')),
                    ('WaveletBlur', ('K9', 'K7')),
                ],
            ],
        ],
    ],
    [
        [
            [
                [
                    ('AREAResize', ('s0.95', 's0.73')),
                    ('AREAResize', ('s0.79', 's0.36')),
                ],
                [
                    ('AREAResize', ('s0.31', 's0.89')),
                    ('AREAResize', ('s0.84', 's0.63')),
                ],
            ],
            [
                [
                    ('AREAResize', ('s0.68', 's0.25')),
                    ('AREAResize', ('s0.20', 's0.57')),
                ],
                [
                    ('AREAResize', ('s0.52', 's0.15')),
                    ('AREAResize', ('s0.41', 's0.47')),
                ],
            ],
        ],
        [
            [
                [
                    ('CUBICResize', ('s0.36', 's0.68')),
                    ('CUBICResize', ('s0.63', 's0.84')),
                ],
                [
                    ('CUBICResize', ('s0.89', 's0.31')),
                    ('CUBICResize', ('s0.79', 's0.73')),
                ],
            ],
            [
                [
                    ('CUBICResize', ('s0.95', 's0.47')),
                    ('CUBICResize', ('s0.41', 's0.15')),
                ],
                [
                    ('CUBICResize', ('s0.57', 's0.52')),
                    ('CUBICResize', ('s0.25', 's0.20')),
                ],
            ],
        ],
        [
            [
                [
                    ('LANCZOS4Resize', ('s0.36', 's0.31')),
                    ('LANCZOS4Resize', ('s0.79', 's0.73')),
                ],
                [
                    ('LANCZOS4Resize', ('s0.47', 's0.41')),
                    ('LANCZOS4Resize', ('s0.89', 's0.84')),
                ],
            ],
            [
                [
                    ('LANCZOS4Resize', ('s0.15', 's0.52')),
                    ('LANCZOS4Resize', ('s0.57', 's0.25')),
                ],
                [
                    ('LANCZOS4Resize', ('s0.20', 's0.68')),
                    ('LANCZOS4Resize', ('s0.63', 's0.95')),
                ],
            ],
        ],
        [
            [
                [
                    ('LINEARResize', ('s0.41', 's0.47')),
                    ('LINEARResize', ('s0.95', 's0.73')),
                ],
                [
                    ('LINEARResize', ('s0.79', 's0.36')),
                    ('LINEARResize', ('s0.31', 's0.84')),
                ],
            ],
            [
                [
                    ('LINEARResize', ('s0.63', 's0.68')),
                    ('LINEARResize', ('s0.25', 's0.20')),
                ],
                [
                    ('LINEARResize', ('s0.57', 's0.52')),
                    ('LINEARResize', ('s0.89', 's0.15')),
                ],
            ],
        ],
        [
            [
                [
                    ('NEARESTResize', ('s0.95', 's0.20')),
                    ('NEARESTResize', ('s0.25', 's0.31')),
                ],
                [
                    ('NEARESTResize', ('s0.79', 's0.73')),
                    ('NEARESTResize', ('s0.36', 's0.41')),
                ],
            ],
            [
                [
                    ('NEARESTResize', ('s0.47', 's0.52')),
                    ('NEARESTResize', ('s0.57', 's0.84')),
                ],
                [
                    ('NEARESTResize', ('s0.89', 's0.15')),
                    ('NEARESTResize', ('s0.63', 's0.68')),
                ],
            ],
        ],
    ],
    [
        [
            [
                [
                    ('JPEGCompress', ('Q57', 'Q53')),
                    ('JPEGCompress', ('Q91', 'Q95')),
                ],
                [
                    ('JPEGCompress', ('Q61', 'Q65')),
                    ('JPEGCompress', ('Q36', 'Q100')),
                ],
            ],
            [
                [
                    ('JPEGCompress', ('Q74', 'Q70')),
                    ('JPEGCompress', ('Q78', 'Q48')),
                ],
                [
                    ('JPEGCompress', ('Q44', 'Q40')),
                    ('JPEGCompress', ('Q82', 'Q87')),
                ],
            ],
        ],
        [
            [
                [
                    ('JPEGDoubleCompress', ('Q95/40', 'Q36/74')),
                    ('JPEGDoubleCompress', ('Q95/57', 'Q61/65')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q70/100', 'Q95/65')),
                    ('JPEGDoubleCompress', ('Q53/74', 'Q87/100')),
                ],
            ],
            [
                [
                    ('JPEGDoubleCompress', ('Q78/57', 'Q87/48')),
                    ('JPEGDoubleCompress', ('Q95/100', 'Q70/65')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q78/40', 'Q78/48')),
                    ('JPEGDoubleCompress', ('Q87/65', 'Q53/40')),
                ],
            ],
        ],
        [
            [
                [
                    ('JPEGDoubleCompress', ('Q61/57', 'Q87/57')),
                    ('JPEGDoubleCompress', ('Q95/82', 'Q70/91')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q53/57', 'Q61/40')),
                    ('JPEGDoubleCompress', ('Q61/74', 'Q44/48')),
                ],
            ],
            [
                [
                    ('JPEGDoubleCompress', ('Q87/40', 'Q95/91')),
                    ('JPEGDoubleCompress', ('Q70/82', 'Q87/82')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q87/91', 'Q53/65')),
                    ('JPEGDoubleCompress', ('Q36/48', 'Q44/74')),
                ],
            ],
        ],
        [
            [
                [
                    ('JPEGDoubleCompress', ('Q36/100', 'Q61/91')),
                    ('JPEGDoubleCompress', ('Q36/65', 'Q53/48')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q53/82', 'Q36/57')),
                    ('JPEGDoubleCompress', ('Q78/100', 'Q78/74')),
                ],
            ],
            [
                [
                    ('JPEGDoubleCompress', ('Q53/91', 'Q70/57')),
                    ('JPEGDoubleCompress', ('Q87/74', 'Q61/48')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q70/40', 'Q95/48')),
                    ('JPEGDoubleCompress', ('Q78/91', 'Q44/40')),
                ],
            ],
        ],
        [
            [
                [
                    ('JPEGDoubleCompress', ('Q78/65', 'Q36/40')),
                    ('JPEGDoubleCompress', ('Q53/100', 'Q44/100')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q36/91', 'Q36/82')),
                    ('JPEGDoubleCompress', ('Q70/74', 'Q61/100')),
                ],
            ],
            [
                [
                    ('JPEGDoubleCompress', ('Q61/82', 'Q44/82')),
                    ('JPEGDoubleCompress', ('Q78/82', 'Q44/57')),
                ],
                [
                    ('JPEGDoubleCompress', ('Q44/65', 'Q95/74')),
                    ('JPEGDoubleCompress', ('Q70/48', 'Q44/91')),
                ],
            ],
        ],
        [
            [
                [
                    ('WEBPCompress', ('Q53', 'Q87')),
                    ('WEBPCompress', ('Q82', 'Q100')),
                ],
                [
                    ('WEBPCompress', ('Q65', 'Q61')),
                    ('WEBPCompress', ('Q95', 'Q91')),
                ],
            ],
            [
                [
                    ('WEBPCompress', ('Q36', 'Q57')),
                    ('WEBPCompress', ('Q78', 'Q70')),
                ],
                [
                    ('WEBPCompress', ('Q74', 'Q40')),
                    ('WEBPCompress', ('Q44', 'Q48')),
                ],
            ],
        ],
    ],
    [
        [
            [
                [
                    ('CloseMorph', ('S19', 'S16')),
                    ('CloseMorph', ('S14', 'S12')),
                ],
                [
                    ('CloseMorph', ('S10', 'S27')),
                    ('CloseMorph', ('S23', 'S21')),
                ],
            ],
            [
                [
                    ('CloseMorph', ('S25', 'S29')),
                    ('CloseMorph', ('S34', 'S31')),
                ],
                [
                    ('CloseMorph', ('S6', 'S4')),
                    ('CloseMorph', ('S2', 'S8')),
                ],
            ],
        ],
        [
            [
                [
                    ('DilateMorph', ('S21', 'S23')),
                    ('DilateMorph', ('S25', 'S27')),
                ],
                [
                    ('DilateMorph', ('S19', 'S14')),
                    ('DilateMorph', ('S16', 'S10')),
                ],
            ],
            [
                [
                    ('DilateMorph', ('S12', 'S29')),
                    ('DilateMorph', ('S31', 'S34')),
                ],
                [
                    ('DilateMorph', ('S8', 'S2')),
                    ('DilateMorph', ('S4', 'S6')),
                ],
            ],
        ],
        [
            [
                [
                    ('ErodeMorph', ('S16', 'S31')),
                    ('ErodeMorph', ('S34', 'S21')),
                ],
                [
                    ('ErodeMorph', ('S23', 'S25')),
                    ('ErodeMorph', ('S27', 'S29')),
                ],
            ],
            [
                [
                    ('ErodeMorph', ('S8', 'S2')),
                    ('ErodeMorph', ('S6', 'S4')),
                ],
                [
                    ('ErodeMorph', ('S19', 'S14')),
                    ('ErodeMorph', ('S10', 'S12')),
                ],
            ],
        ],
        [
            [
                [
                    ('OpenMorph', ('S10', 'S12')),
                    ('OpenMorph', ('S14', 'S16')),
                ],
                [
                    ('OpenMorph', ('S19', 'S21')),
                    ('OpenMorph', ('S23', 'S25')),
                ],
            ],
            [
                [
                    ('OpenMorph', ('S27', 'S2')),
                    ('OpenMorph', ('S6', 'S4')),
                ],
                [
                    ('OpenMorph', ('S8', 'S31')),
                    ('OpenMorph', ('S34', 'S29')),
                ],
            ],
        ],
    ],
    [
        [
            [
                [
                    ('GaussianNoise', ('S3', 'S7')),
                    ('GaussianNoise', ('S5', 'S9')),
                ],
                [
                    ('GaussianNoise', ('S30', 'S32')),
                    ('GaussianNoise', ('S35', 'S22')),
                ],
            ],
            [
                [
                    ('GaussianNoise', ('S20', 'S26')),
                    ('GaussianNoise', ('S24', 'S28')),
                ],
                [
                    ('GaussianNoise', ('S17', 'S15')),
                    ('GaussianNoise', ('S13', 'S11')),
                ],
            ],
        ],
        [
            [
                [
                    ('ImpluseNoise', ('P13', 'P11')),
                    ('ImpluseNoise', ('P17', 'P15')),
                ],
                [
                    ('ImpluseNoise', ('P9', 'P3')),
                    ('ImpluseNoise', ('P5', 'P7')),
                ],
            ],
            [
                [
                    ('ImpluseNoise', ('P28', 'P26')),
                    ('ImpluseNoise', ('P24', 'P22')),
                ],
                [
                    ('ImpluseNoise', ('P20', 'P30')),
                    ('ImpluseNoise', ('P32', 'P35')),
                ],
            ],
        ],
        [
            [
                [
                    ('PoissonNoise', ('L24', 'L26')),
                    ('PoissonNoise', ('L20', 'L22')),
                ],
                [
                    ('PoissonNoise', ('L28', 'L3')),
                    ('PoissonNoise', ('L7', 'L5')),
                ],
            ],
            [
                [
                    ('PoissonNoise', ('L9', 'L35')),
                    ('PoissonNoise', ('L32', 'L30')),
                ],
                [
                    ('PoissonNoise', ('L15', 'L17')),
                    ('PoissonNoise', ('L11', 'L13')),
                ],
            ],
        ],
        [
            [
                [
                    ('UniformNoise', ('M35', 'M30')),
                    ('UniformNoise', ('M32', 'M7')),
                ],
                [
                    ('UniformNoise', ('M5', 'M3')),
                    ('UniformNoise', ('M9', 'M13')),
                ],
            ],
            [
                [
                    ('UniformNoise', ('M11', 'M17')),
                    ('UniformNoise', ('M15', 'M28')),
                ],
                [
                    ('UniformNoise', ('M26', 'M24')),
                    ('UniformNoise', ('M22', 'M20')),
                ],
            ],
        ],
    ],
    [
        [
            [
                [
                    ('Quantization', ('C50', 'C125')),
                    ('Quantization', ('C225', 'C175')),
                ],
                [
                    ('Quantization', ('C100', 'C200')),
                    ('Quantization', ('C150', 'C75')),
                ],
            ],
        ],
        [
            [
                [
                    ('Dithering', ('',)),
                ],
            ],
        ],
    ],
    [
        [
            [
                [
                    ('AutoContrast', ('C2', 'C3')),
                    ('AutoContrast', ('C0', 'C1')),
                ],
                [
                    ('AutoContrast', ('C6', 'C7')),
                    ('AutoContrast', ('C4', 'C5')),
                ],
            ],
        ],
        [
            [
                [
                    ('HistEq', ('C7', 'C6')),
                    ('HistEq', ('C5', 'C4')),
                ],
                [
                    ('HistEq', ('C3', 'C2')),
                    ('HistEq', ('C1',)),
                ],
            ],
        ],
    ],
]
