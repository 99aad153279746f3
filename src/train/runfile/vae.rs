//! The VAE lab's runs: the encoder and decoder of either architecture (the batch normalisation's running averages
//! with them: evaluation uses them), and the reconstructions recorded after each epoch.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::tensors::{
    DenseShape, SavedModel, TensorReader, TensorWriter, read_dense, read_mlp, write_dense, write_mlp,
};
use crate::Lab;
use crate::compute::Activation;
use crate::data::prepare::{Prepared, image_side};
use crate::models::conv::{ConvGeometry, ConvKind, ConvLayerParams, ConvVaeParams, NormParams};
use crate::models::resume::TrainState;
use crate::models::vae::{Likelihood, VaeConfig, VaeNetworks, VaeParams, VaeTrainer, VaeView};
use crate::train::{EpochRecord, ModelView, TrainError, Trainer};

/// A size in a convolutional layout larger than this is not one of ours (and would overflow the tensors' sizes).
const MAX_CONV_SIZE: usize = 1 << 16;

/// One convolutional layer's layout. Tensors `{prefix}.{i}.weights` (`[k² · c_in, c_out]` for a convolution,
/// `[c_in, k² · c_out]` for a transposed one), `{prefix}.{i}.biases` `[c_out]` if the layer has biases, and with
/// batch normalisation `{prefix}.{i}.norm.gamma`, `.norm.beta`, `.norm.running_mean` and
/// `.norm.running_variance` `[c_out]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayerShape {
    /// Convolution (big map -> small) or transposed convolution (small -> big).
    pub kind: ConvKind,
    /// Map sizes, kernel, stride and padding.
    pub geometry: ConvGeometry,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Whether the layer adds biases (a layer that batch normalisation follows has none).
    pub biases: bool,
    /// Whether batch normalisation follows the convolution.
    pub norm: bool,
    /// Applied last.
    pub activation: Activation,
}

/// The VAE's networks' layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum VaeNetworksShape {
    /// Dense layers: tensors `encoder.{j}.*` (input -> `[mu, log sigma²]`) and `decoder.{j}.*` (latent -> input).
    Mlp {
        /// The encoder's layers.
        encoder: Vec<DenseShape>,
        /// The decoder's layers.
        decoder: Vec<DenseShape>,
    },
    /// The convolutional VAE: tensors `encoder.{i}.*`, `to_latent.*`, `from_latent.*` and `decoder.{i}.*`.
    Conv {
        /// Side of the square images.
        side: usize,
        /// The encoder's convolutions, first first.
        encoder: Vec<ConvLayerShape>,
        /// Flattened last feature map -> `[mu, log sigma²]`.
        to_latent: DenseShape,
        /// Latent -> the decoder's first feature map.
        from_latent: DenseShape,
        /// The decoder's transposed convolutions, first first.
        decoder: Vec<ConvLayerShape>,
    },
}

/// The VAE's layout. Besides the networks' tensors: `originals` `[recorded_inputs, n_in]` (the fixed test
/// inputs) and `reconstructions.{h}` `[recorded_inputs, n_in]` (their reconstructions after the `h`-th recorded
/// epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaeArchitecture {
    /// Latent dimension.
    pub latent: usize,
    /// `p(x | z)`.
    pub likelihood: Likelihood,
    /// Side of the square image an input forms, if it is one.
    pub image_side: Option<usize>,
    /// The encoder and decoder.
    pub networks: VaeNetworksShape,
    /// Test inputs whose reconstructions were recorded.
    pub recorded_inputs: usize,
    /// The epochs after which they were recorded (0 is the untrained model), oldest first.
    pub reconstruction_epochs: Vec<usize>,
}

/// The shape of a convolutional layer's weights (see [`ConvLayerParams::weights`]).
fn conv_weights_shape(
    kind: ConvKind,
    geometry: &ConvGeometry,
    c_in: usize,
    c_out: usize,
) -> Result<[usize; 2], String> {
    let too_large = || "a convolution is too large".to_owned();
    let k2 = geometry.kernel.checked_mul(geometry.kernel).ok_or_else(too_large)?;
    Ok(match kind {
        ConvKind::Conv => [k2.checked_mul(c_in).ok_or_else(too_large)?, c_out],
        ConvKind::Transposed => [c_in, k2.checked_mul(c_out).ok_or_else(too_large)?],
    })
}

fn write_conv_layers(
    tensors: &mut TensorWriter,
    prefix: &str,
    layers: &[ConvLayerParams],
) -> Result<Vec<ConvLayerShape>, String> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let shape = conv_weights_shape(l.kind, &l.geometry, l.c_in, l.c_out)?;
            tensors.add(format!("{prefix}.{i}.weights"), shape.to_vec(), &l.weights)?;
            let biases = !l.biases.is_empty();
            if biases {
                tensors.add(format!("{prefix}.{i}.biases"), vec![l.c_out], &l.biases)?;
            }
            if let Some(n) = &l.norm {
                tensors.add(format!("{prefix}.{i}.norm.gamma"), vec![l.c_out], &n.gamma)?;
                tensors.add(format!("{prefix}.{i}.norm.beta"), vec![l.c_out], &n.beta)?;
                tensors.add(format!("{prefix}.{i}.norm.running_mean"), vec![l.c_out], &n.running_mean)?;
                tensors.add(format!("{prefix}.{i}.norm.running_variance"), vec![l.c_out], &n.running_variance)?;
            }
            Ok(ConvLayerShape {
                kind: l.kind,
                geometry: l.geometry,
                c_in: l.c_in,
                c_out: l.c_out,
                biases,
                norm: l.norm.is_some(),
                activation: l.activation,
            })
        })
        .collect()
}

fn read_conv_layers(
    tensors: &mut TensorReader<'_>,
    prefix: &str,
    shapes: &[ConvLayerShape],
) -> Result<Vec<ConvLayerParams>, String> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let shape = conv_weights_shape(s.kind, &s.geometry, s.c_in, s.c_out)?;
            let c = [s.c_out];
            let norm = if s.norm {
                Some(NormParams {
                    gamma: tensors.take(&format!("{prefix}.{i}.norm.gamma"), &c)?,
                    beta: tensors.take(&format!("{prefix}.{i}.norm.beta"), &c)?,
                    running_mean: tensors.take(&format!("{prefix}.{i}.norm.running_mean"), &c)?,
                    running_variance: tensors.take(&format!("{prefix}.{i}.norm.running_variance"), &c)?,
                })
            } else {
                None
            };
            Ok(ConvLayerParams {
                kind: s.kind,
                geometry: s.geometry,
                c_in: s.c_in,
                c_out: s.c_out,
                weights: tensors.take(&format!("{prefix}.{i}.weights"), &shape)?,
                biases: if s.biases { tensors.take(&format!("{prefix}.{i}.biases"), &c)? } else { Vec::new() },
                norm,
                activation: s.activation,
            })
        })
        .collect()
}

/// Checks that the convolutional networks fit together: `side × side` images of one channel through the
/// encoder's convolutions to `[mu, log sigma²]`, and the latent through the decoder back to one channel of
/// `side × side` (so that every reshape of the forward passes holds).
fn check_conv_layout(
    side: usize,
    latent: usize,
    encoder: &[ConvLayerShape],
    to_latent: &DenseShape,
    from_latent: &DenseShape,
    decoder: &[ConvLayerShape],
) -> Result<(), String> {
    if side == 0 || side > MAX_CONV_SIZE {
        return Err(format!("the convolutional VAE's image side {side} is out of range"));
    }
    if encoder.is_empty() || decoder.is_empty() {
        return Err("the convolutional VAE needs convolutions in the encoder and in the decoder".into());
    }
    let parts = encoder.iter().map(|l| ("encoder", l)).chain(decoder.iter().map(|l| ("decoder", l)));
    for (i, (part, l)) in parts.enumerate() {
        let g = &l.geometry;
        let sizes = [g.big.0, g.big.1, g.small.0, g.small.1, g.kernel, g.stride, g.pad.0, g.pad.1, l.c_in, l.c_out];
        let n = if i < encoder.len() { i + 1 } else { i + 1 - encoder.len() };
        if sizes.iter().any(|&v| v > MAX_CONV_SIZE) || [g.kernel, g.stride, l.c_in, l.c_out].contains(&0) {
            return Err(format!("{part} convolution {n} has sizes out of range"));
        }
        if *g != ConvGeometry::same(g.big, g.kernel, g.stride) {
            return Err(format!("{part} convolution {n} has a geometry that is not \"same\" padding"));
        }
        let expected = if part == "encoder" { ConvKind::Conv } else { ConvKind::Transposed };
        if l.kind != expected {
            return Err(format!("{part} convolution {n} is a {:?} layer; the {part} has {expected:?} layers", l.kind));
        }
    }
    let (map, c) = follow_maps("encoder", encoder, (side, side), 1)?;
    let flat = map.0 * map.1 * c;
    let twice = latent.checked_mul(2).ok_or("the latent dimension is too large")?;
    if to_latent.n_in != flat || to_latent.n_out != twice {
        return Err(format!(
            "the encoder's dense layer maps {} to {} values; the network needs {flat} to {twice}",
            to_latent.n_in, to_latent.n_out
        ));
    }
    let first = &decoder[0];
    let (map, c) = (first.geometry.small, first.c_in);
    if from_latent.n_in != latent || from_latent.n_out != map.0 * map.1 * c {
        return Err(format!(
            "the decoder's dense layer maps {} to {} values; the network needs {latent} to {}",
            from_latent.n_in,
            from_latent.n_out,
            map.0 * map.1 * c
        ));
    }
    let (map, c) = follow_maps("decoder", decoder, map, c)?;
    if map != (side, side) || c != 1 {
        return Err(format!("the decoder gives {} maps, not the {side}x{side}x1 images", describe_maps(map, c)));
    }
    Ok(())
}

/// Follows the feature maps through `layers` (the `part`'s, "encoder" or "decoder") from `map` with `c` channels,
/// checking that each layer takes what the one before gives; returns the map and channels the last one gives. A
/// convolution takes its big map and gives its small one, a transposed convolution the other way round.
fn follow_maps(
    part: &str,
    layers: &[ConvLayerShape],
    mut map: (usize, usize),
    mut c: usize,
) -> Result<((usize, usize), usize), String> {
    for (i, l) in layers.iter().enumerate() {
        let (takes, gives) = match l.kind {
            ConvKind::Conv => (l.geometry.big, l.geometry.small),
            ConvKind::Transposed => (l.geometry.small, l.geometry.big),
        };
        if takes != map || l.c_in != c {
            return Err(format!(
                "{part} convolution {} takes {} maps but gets {}",
                i + 1,
                describe_maps(takes, l.c_in),
                describe_maps(map, c)
            ));
        }
        (map, c) = (gives, l.c_out);
    }
    Ok((map, c))
}

/// Feature maps as the layout's errors name them: `rows`x`columns`x`channels`.
fn describe_maps(map: (usize, usize), c: usize) -> String {
    format!("{}x{}x{c}", map.0, map.1)
}

impl SavedModel for VaeView {
    const LAB: Lab = Lab::Vae;
    type Config = VaeConfig;
    type Architecture = VaeArchitecture;

    fn seed(config: &VaeConfig) -> u64 {
        config.seed
    }

    fn model_name(&self, _config: &VaeConfig) -> String {
        format!("vae-{}-{}", self.params.arch().cli_name(), self.params.likelihood.cli_name())
    }

    fn write(&self, tensors: &mut TensorWriter) -> Result<VaeArchitecture, String> {
        let p = &self.params;
        let networks = match &p.networks {
            VaeNetworks::Mlp { encoder, decoder } => VaeNetworksShape::Mlp {
                encoder: write_mlp(tensors, "encoder", encoder)?,
                decoder: write_mlp(tensors, "decoder", decoder)?,
            },
            VaeNetworks::Conv(c) => {
                if c.latent != p.latent {
                    return Err(format!("the networks' latent dimension {} is not the model's {}", c.latent, p.latent));
                }
                VaeNetworksShape::Conv {
                    side: c.side,
                    encoder: write_conv_layers(tensors, "encoder", &c.encoder)?,
                    to_latent: write_dense(tensors, "to_latent", &c.to_latent)?,
                    from_latent: write_dense(tensors, "from_latent", &c.from_latent)?,
                    decoder: write_conv_layers(tensors, "decoder", &c.decoder)?,
                }
            }
        };
        let n_in = p.n_in().max(1);
        let recorded_inputs = self.originals.len() / n_in;
        tensors.add("originals".into(), vec![recorded_inputs, n_in], &self.originals)?;
        for (h, (epoch, images)) in self.reconstructions.iter().enumerate() {
            tensors
                .add(format!("reconstructions.{h}"), vec![recorded_inputs, n_in], images)
                .map_err(|e| format!("the reconstructions after epoch {epoch}: {e}"))?;
        }
        Ok(VaeArchitecture {
            latent: p.latent,
            likelihood: p.likelihood,
            image_side: p.image_side,
            networks,
            recorded_inputs,
            reconstruction_epochs: self.reconstructions.iter().map(|(epoch, _)| *epoch).collect(),
        })
    }

    fn read(arch: &VaeArchitecture, tensors: &mut TensorReader<'_>) -> Result<Self, String> {
        let latent = arch.latent;
        if latent == 0 {
            return Err("the latent dimension is 0".into());
        }
        let twice = latent.checked_mul(2).ok_or("the latent dimension is too large")?;
        let networks = match &arch.networks {
            VaeNetworksShape::Mlp { encoder, decoder } => {
                if encoder.is_empty() || decoder.is_empty() {
                    return Err("the encoder and the decoder need at least one layer each".into());
                }
                if encoder.iter().chain(decoder).any(|l| l.n_in == 0 || l.n_out == 0) {
                    return Err("a layer has no inputs or no outputs".into());
                }
                let encoder = read_mlp(tensors, "encoder", encoder)?;
                let decoder = read_mlp(tensors, "decoder", decoder)?;
                if encoder.n_out() != twice {
                    return Err(format!(
                        "the encoder gives {} values; a latent dimension of {latent} needs {twice} (means and \
                         log-variances)",
                        encoder.n_out()
                    ));
                }
                if decoder.n_in() != latent || decoder.n_out() != encoder.n_in() {
                    return Err(format!(
                        "the decoder maps {} to {} values; the model needs {latent} to {}",
                        decoder.n_in(),
                        decoder.n_out(),
                        encoder.n_in()
                    ));
                }
                VaeNetworks::Mlp { encoder, decoder }
            }
            VaeNetworksShape::Conv { side, encoder, to_latent, from_latent, decoder } => {
                check_conv_layout(*side, latent, encoder, to_latent, from_latent, decoder)?;
                if arch.image_side != Some(*side) {
                    return Err(format!(
                        "the convolutional VAE takes {side}x{side} images but the model's image side is {}",
                        arch.image_side.map_or_else(|| "missing".to_owned(), |s| s.to_string())
                    ));
                }
                VaeNetworks::Conv(ConvVaeParams {
                    side: *side,
                    latent,
                    encoder: read_conv_layers(tensors, "encoder", encoder)?,
                    to_latent: read_dense(tensors, "to_latent", to_latent)?,
                    from_latent: read_dense(tensors, "from_latent", from_latent)?,
                    decoder: read_conv_layers(tensors, "decoder", decoder)?,
                })
            }
        };
        let params = VaeParams { networks, latent, likelihood: arch.likelihood, image_side: arch.image_side };
        let n_in = params.n_in();
        if let Some(side) = arch.image_side
            && (side < 2 || side.checked_mul(side) != Some(n_in))
        {
            return Err(format!("{n_in} values per input do not form {side}x{side} images"));
        }
        let shape = [arch.recorded_inputs, n_in];
        let originals = tensors.take("originals", &shape)?;
        let reconstructions = arch
            .reconstruction_epochs
            .iter()
            .enumerate()
            .map(|(h, &epoch)| Ok((epoch, tensors.take(&format!("reconstructions.{h}"), &shape)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            params: Arc::new(params),
            originals: Arc::new(originals),
            reconstructions: Arc::new(reconstructions),
        })
    }

    fn check_data(&self, data: &Prepared) -> Result<(), String> {
        let (n_in, d) = (self.params.n_in(), data.n_features());
        if n_in != d {
            return Err(format!("the VAE takes {n_in} values per input but the data has {d} features"));
        }
        if let Some(side) = self.params.image_side
            && image_side(d) != Some(side)
        {
            return Err(format!("the VAE takes {side}x{side} images but the data's {d} features are not"));
        }
        Ok(())
    }

    fn from_model_view(view: &ModelView) -> Option<Self> {
        match view {
            ModelView::Vae { view, .. } => Some((**view).clone()),
            _ => None,
        }
    }

    fn model_view(&self, step: u64) -> ModelView {
        ModelView::Vae { step, view: Arc::new(self.clone()) }
    }

    fn trainer(config: &VaeConfig, data: &Arc<Prepared>) -> Result<Box<dyn Trainer>, TrainError> {
        Ok(Box::new(VaeTrainer::new(config.clone(), data)?))
    }

    fn with_epochs(config: &VaeConfig, epochs: usize) -> VaeConfig {
        VaeConfig { epochs, ..config.clone() }
    }

    fn resumed_trainer(
        config: &VaeConfig,
        data: &Arc<Prepared>,
        state: &TrainState,
        history: Vec<EpochRecord>,
        total_epochs: usize,
        view: &ModelView,
    ) -> Result<Box<dyn Trainer>, TrainError> {
        let trainer = VaeTrainer::new(config.clone(), data)?;
        Ok(Box::new(trainer.resume(state, history, total_epochs, Some(view))?))
    }

    /// The test figures of [`VaeTrainer`]'s epoch records (negative ELBO, reconstruction and KL terms with the
    /// same seeded latent draws, and the 5-NN accuracy of the latent means when the data has labels), computed
    /// by the trainer with the loaded networks in place of fresh ones.
    fn evaluate(&self, config: &VaeConfig, data: &Prepared, _epochs: usize) -> Result<Vec<(String, f64)>, TrainError> {
        let data = Arc::new(data.clone());
        let trainer = VaeTrainer::with_params(config.clone(), &data, &self.params)?;
        let test = trainer.test_elbo()?;
        let mut metrics = vec![
            ("test_neg_elbo".to_owned(), test.neg_elbo),
            ("test_recon".to_owned(), test.recon),
            ("test_kl".to_owned(), test.kl),
        ];
        if let Some(accuracy) = trainer.knn5_accuracy()? {
            metrics.push(("knn5_accuracy".to_owned(), accuracy));
        }
        Ok(metrics)
    }
}
