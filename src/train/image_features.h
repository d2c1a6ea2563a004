#pragma once
// A frozen image model as a feature extractor: the pooled representation (class token or mean,
// after the final LayerNorm) of every image of a data set, as the set anomaly task's items.
#include "data/images/image_dataset.h"
#include "data/images/image_transform.h"
#include "data/set_anomaly.h"
#include "kvtie/model.h"

namespace kvtie {

// Every image of `data`, in order, through `transform`'s evaluation view and `model` (an image model
// with a pooled head whose image shape is the data's), in batches of model.max_batch().
FeatureTable image_features(Transformer<float>& model, const ImageDataset& data, const ImageTransform& transform);

}  // namespace kvtie
