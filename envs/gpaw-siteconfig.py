# GPAW build configuration (read by GPAW's setup.py via GPAW_CONFIG) for Debian/Ubuntu's
# libxc-dev, libfftw3-dev, libopenblas-dev, libscalapack-openmpi-dev and OpenMPI.
# scripts/setup.sh builds GPAW against the venv's numpy with it:
#   GPAW_CONFIG=envs/gpaw-siteconfig.py pip install --no-build-isolation gpaw==<envs/gpaw-requirements.txt>
# MPI runs use `mpirun -np N gpaw python script.py`; serial runs need no MPI launcher.
mpi = True
compiler = 'mpicc'
fftw = True
scalapack = True
libraries = ['xc', 'fftw3', 'scalapack-openmpi', 'openblas']
