// stb_image's implementation, compiled once in this file and with warnings off (CMake gives this
// file -w): it is third-party code we do not edit. Only the formats our data sets use are built.
#include "data/images/stb_config.h"

#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
