#pragma once
// The stb_image configuration shared by its implementation file and its callers, so that both
// see the same declarations: JPEG (TinyImageNet's format) and PNG only, decoding from memory only
// (we read files ourselves, so that errors name them).
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
