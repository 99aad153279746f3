//! The window without a window: the app drawn frame by frame into a texture with egui-wgpu, for what the command
//! line makes of the window's figures (`train … --animate DIR`, `animate.rs`). Each frame runs the app's UI in an
//! [`egui::Context`] of a fixed size, uploads the textures it changed, and, when the UI asked for a screenshot (as
//! "Save image…" and "Record animation…" do), renders the frame and hands the image to the request, as the window
//! would. It needs a wgpu adapter (a GPU, or Mesa's lavapipe on the CPU) and no display.

use std::sync::Arc;
use std::time::Instant;

use eframe::egui_wgpu::{self, RenderState, ScreenDescriptor, wgpu};

/// How long one render may take before it counts as failed (lavapipe on two busy cores takes well under a second).
const RENDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An offscreen window of a fixed size.
pub struct OffscreenWindow {
    ctx: egui::Context,
    render: RenderState,
    size: egui::Vec2,
    started: Instant,
}

impl OffscreenWindow {
    /// A window of `size` points (one pixel per point) on the first adapter wgpu offers, under the process's GPU
    /// set-up lock (`compute::gpu::adapters::setup_lock`); `Err` says why none could be made.
    pub fn new(ctx: egui::Context, size: egui::Vec2) -> Result<Self, String> {
        let render = {
            let _lock = crate::compute::gpu::adapters::setup_lock();
            let setup = egui_wgpu::WgpuSetup::CreateNew(egui_wgpu::WgpuSetupCreateNew::without_display_handle());
            let instance = pollster::block_on(setup.new_instance());
            let configuration = egui_wgpu::WgpuConfiguration { wgpu_setup: setup, ..Default::default() };
            pollster::block_on(RenderState::create(
                &configuration,
                &instance,
                None,
                egui_wgpu::RendererOptions::default(),
            ))
            .map_err(|e| format!("no graphics adapter to draw the figures offscreen: {e}"))?
        };
        Ok(Self { ctx, render, size, started: Instant::now() })
    }

    /// The adapter drawing the frames, in words.
    #[must_use]
    pub fn adapter(&self) -> String {
        let info = self.render.adapter.get_info();
        format!("{} ({:?})", info.name, info.backend)
    }

    /// Runs one frame of `ui` and answers the screenshots it asked for.
    pub fn frame(&mut self, ui: impl FnMut(&mut egui::Ui)) -> Result<(), String> {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, self.size)),
            time: Some(self.started.elapsed().as_secs_f64()),
            focused: true,
            ..Default::default()
        };
        let mut output = self.ctx.run_ui(input, ui);
        self.upload(&mut output.textures_delta);
        let asked: Vec<egui::ScreenshotCallback> = output
            .viewport_output
            .values()
            .flat_map(|viewport| &viewport.commands)
            .filter_map(|command| match command {
                egui::ViewportCommand::Screenshot(callback) => Some(callback.clone()),
                _ => None,
            })
            .collect();
        if !asked.is_empty() {
            let image = Arc::new(self.draw(&output)?);
            for callback in asked {
                callback.complete(Arc::clone(&image));
            }
        }
        Ok(())
    }

    fn upload(&self, delta: &mut egui::TexturesDelta) {
        let mut renderer = self.render.renderer.write();
        // Each texture's updates in order; which texture goes first does not matter.
        #[expect(clippy::iter_over_hash_type)]
        for (id, images) in delta.set.drain() {
            for image in &images {
                renderer.update_texture(&self.render.device, &self.render.queue, id, image);
            }
        }
        #[expect(clippy::iter_over_hash_type)]
        for id in delta.free.drain() {
            renderer.free_texture(&id);
        }
    }

    /// Renders `output`'s shapes into a texture and reads it back.
    fn draw(&self, output: &egui::FullOutput) -> Result<egui::ColorImage, String> {
        let (device, queue) = (&self.render.device, &self.render.queue);
        let ppp = output.pixels_per_point;
        let [w, h] = [(self.size.x * ppp).round() as u32, (self.size.y * ppp).round() as u32];
        let screen = ScreenDescriptor { size_in_pixels: [w, h], pixels_per_point: ppp };
        let triangles = self.ctx.tessellate(output.shapes.clone(), ppp);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("offscreen") });
        let mut renderer = self.render.renderer.write();
        let extra = renderer.update_buffers(device, queue, &mut encoder, &triangles, &screen);
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("offscreen frame"),
            size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: self.render.target_format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        {
            let attachment = wgpu::RenderPassColorAttachment {
                view: &view,
                resolve_target: None,
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::BLACK), store: wgpu::StoreOp::Store },
                depth_slice: None,
            };
            let mut pass = encoder
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("offscreen frame"),
                    color_attachments: &[Some(attachment)],
                    ..Default::default()
                })
                .forget_lifetime();
            renderer.render(&mut pass, &triangles, &screen);
        }
        // Rows padded to wgpu's copy alignment.
        let row = w as usize * 4;
        let padded = row.next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("offscreen read-back"),
            size: (padded * h as usize) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded as u32),
                    rows_per_image: None,
                },
            },
            wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
        );
        let submitted = queue.submit(extra.into_iter().chain(std::iter::once(encoder.finish())));
        let (send, receive) = std::sync::mpsc::channel();
        buffer.slice(..).map_async(wgpu::MapMode::Read, move |mapped| drop(send.send(mapped)));
        device
            .poll(wgpu::PollType::Wait { submission_index: Some(submitted), timeout: Some(RENDER_TIMEOUT) })
            .map_err(|e| format!("drawing the frame: {e}"))?;
        receive
            .recv()
            .map_err(|e| format!("reading the frame back: {e}"))?
            .map_err(|e| format!("reading the frame back: {e}"))?;
        let bytes = buffer.slice(..).get_mapped_range().map_err(|e| format!("reading the frame back: {e:?}"))?;
        let bgra =
            matches!(self.render.target_format, wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Bgra8UnormSrgb);
        let pixels = bytes
            .chunks_exact(padded)
            .flat_map(|line| line[..row].chunks_exact(4))
            .map(|p| {
                let (r, b) = if bgra { (p[2], p[0]) } else { (p[0], p[2]) };
                egui::Color32::from_rgba_premultiplied(r, p[1], b, p[3])
            })
            .collect();
        Ok(egui::ColorImage::new([w as usize, h as usize], pixels))
    }
}
